import { LinuxNetworkConfigurator } from '../../src/platform/linux';
import { RecordingRunner } from '../helpers/recording-runner';

const SHOW = 'ip -j route show dev trellis0';

describe('LinuxNetworkConfigurator.setRoutes', () => {
  it('routes missing prefixes into the interface and removes only the ones it added', async () => {
    const runner = new RecordingRunner({
      [SHOW]: { stdout: '[{"dst":"100.64.0.0/10"},{"dst":"10.1.0.0/16"}]' },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await net.setRoutes('trellis0', ['192.168.1.0/24', '10.1.0.0/16']);
    expect(runner.calls).toEqual([SHOW, 'ip route replace 192.168.1.0/24 dev trellis0']);

    runner.calls.length = 0;
    runner.answers[SHOW] = { stdout: '[{"dst":"192.168.1.0/24"},{"dst":"10.1.0.0/16"}]' };
    await net.setRoutes('trellis0', ['10.1.0.0/16']);
    expect(runner.calls).toEqual(['ip route del 192.168.1.0/24 dev trellis0', SHOW]);
  });

  it('takes them all away on remove, and does nothing when it never routed any', async () => {
    const runner = new RecordingRunner();
    const net = new LinuxNetworkConfigurator(runner);
    await net.setRoutes('trellis0', []);
    expect(runner.calls).toEqual([]);
    await net.setRoutes('trellis0', ['172.16.0.0/12']);
    runner.calls.length = 0;
    await net.remove('trellis0', '100.64.0.0/10');
    expect(runner.calls).toEqual([
      'ip route del 172.16.0.0/12 dev trellis0',
      'ip route del 100.64.0.0/10 dev trellis0',
      'ip link set trellis0 down',
    ]);
  });

  it('fails loudly when the kernel refuses a route', async () => {
    const runner = new RecordingRunner({
      'ip route replace 10.9.0.0/16 dev trellis0': { code: 2, stderr: 'RTNETLINK answers: Invalid argument' },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await expect(net.setRoutes('trellis0', ['10.9.0.0/16'])).rejects.toThrow(/Invalid argument/);
  });
});
