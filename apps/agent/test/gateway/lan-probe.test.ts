import { LinuxLanProbe } from '../../src/gateway/lan-probe';
import { RecordingRunner } from '../helpers/recording-runner';

const UP = '[{"ifname":"eth1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"]}]';
const NO_CARRIER = '[{"ifname":"eth1","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"]}]';

describe('LinuxLanProbe', () => {
  it('names the interface of the most specific route covering the prefix while it is up with a carrier', async () => {
    const runner = new RecordingRunner({
      'ip -j route show to match 192.168.1.0': {
        stdout:
          '[{"dst":"default","gateway":"192.0.2.1","dev":"wan0"},' +
          '{"dst":"192.168.0.0/16","gateway":"192.168.9.1","dev":"eth2"},' +
          '{"dst":"192.168.1.0/24","dev":"eth1","protocol":"kernel","scope":"link","prefsrc":"192.168.1.2"}]',
      },
      'ip -j link show dev eth1': { stdout: UP },
    });
    const probe = new LinuxLanProbe(runner);
    expect(await probe.routeInterface('192.168.1.0/24')).toBe('eth1');
    runner.answers['ip -j link show dev eth1'] = { stdout: NO_CARRIER };
    expect(await probe.routeInterface('192.168.1.0/24')).toBeNull();
    runner.answers['ip -j link show dev eth1'] = { code: 1, stderr: 'Device "eth1" does not exist.' };
    expect(await probe.routeInterface('192.168.1.0/24')).toBeNull();
  });

  it('reports a prefix only the default route covers (its LAN went away) as down', async () => {
    const runner = new RecordingRunner({
      'ip -j route show to match 10.0.0.0': {
        stdout: '[{"dst":"default","gateway":"192.0.2.1","dev":"wan0"}]',
      },
      'ip -j route show to match 10.1.0.0': { stdout: '[{"dst":"10.1.0.0/16","type":"unreachable"}]' },
      'ip -j route show default': { stdout: '[{"dst":"default","gateway":"192.0.2.1","dev":"wan0"}]' },
    });
    const probe = new LinuxLanProbe(runner);
    expect(await probe.routeInterface('10.0.0.0/8')).toBeNull();
    expect(await probe.routeInterface('10.1.0.0/16')).toBeNull();
    expect(runner.calls.filter((c) => c.startsWith('ip -j link'))).toEqual([]);
    expect(await probe.defaultInterface()).toBe('wan0');
    runner.answers['ip -j route show default'] = { stdout: '' };
    expect(await probe.defaultInterface()).toBeNull();
  });

  it("lists the device's on-link IPv4 subnets (an exit node's clients must not reach them)", async () => {
    const runner = new RecordingRunner({
      'ip -4 -j route show scope link': {
        stdout:
          '[{"dst":"192.168.1.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.1.2"},' +
          '{"dst":"10.9.9.9","dev":"eth1","scope":"link"},' +
          '{"type":"broadcast","dst":"192.168.1.255","dev":"eth0","scope":"link"}]',
      },
    });
    expect(await new LinuxLanProbe(runner).onLinkSubnets()).toEqual(['192.168.1.0/24', '10.9.9.9/32']);
  });

  it('lists what the kernel delivers to the device itself, from the local table', async () => {
    const runner = new RecordingRunner({
      'ip -4 -j route show table local type local': {
        stdout:
          '[{"type":"local","dst":"127.0.0.0/8","dev":"lo","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1"},' +
          '{"type":"local","dst":"192.168.1.2","dev":"eth0","protocol":"kernel","scope":"host","prefsrc":"192.168.1.2"}]',
      },
    });
    expect(await new LinuxLanProbe(runner).localAddresses()).toEqual(['127.0.0.0/8', '192.168.1.2/32']);
  });
});
