import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxNetworkConfigurator } from '../../src/platform/linux';
import { RecordingRunner } from '../helpers/recording-runner';

const MAIN = 'ip -j route show table main';
const route = (dst: string, dev: string, protocol: string) => ({ dst, dev, protocol });

describe('LinuxNetworkConfigurator.setRoutes', () => {
  it('adds missing prefixes with proto 116 and removes only its own routes that are not wanted', async () => {
    const runner = new RecordingRunner({
      [MAIN]: {
        stdout: JSON.stringify([
          route('100.64.0.0/10', 'trellis0', 'boot'),
          route('10.1.0.0/16', 'trellis0', '116'),
          route('172.16.0.0/12', 'trellis0', '116'),
        ]),
      },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await net.setRoutes('trellis0', ['192.168.1.0/24', '10.1.0.0/16']);
    expect(runner.calls).toEqual([
      MAIN,
      'ip route del 172.16.0.0/12 proto 116 dev trellis0',
      'ip route add 192.168.1.0/24 dev trellis0 proto 116',
    ]);
  });

  it("removes a crashed run's leftovers (ours by proto) and never touches another proto's route", async () => {
    const runner = new RecordingRunner({
      [MAIN]: {
        stdout: JSON.stringify([
          route('10.9.0.0/16', 'trellis-old', '116'),
          route('192.168.1.0/24', 'eth0', 'static'),
          route('default', 'eth0', 'dhcp'),
        ]),
      },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await net.setRoutes('trellis0', ['192.168.1.0/24', '10.9.0.0/16']);
    expect(runner.calls).toEqual([
      MAIN,
      'ip route del 10.9.0.0/16 proto 116 dev trellis-old',
      'ip route add 10.9.0.0/16 dev trellis0 proto 116',
    ]);
  });

  it('takes all of its routes away on remove', async () => {
    const runner = new RecordingRunner({
      [MAIN]: { stdout: JSON.stringify([route('172.16.0.0/12', 'trellis0', '116')]) },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await net.remove('trellis0', '100.64.0.0/10');
    expect(runner.calls).toEqual([
      MAIN,
      'ip route del 172.16.0.0/12 proto 116 dev trellis0',
      'ip route del 100.64.0.0/10 dev trellis0',
      'ip link set trellis0 down',
    ]);
  });

  it('fails loudly when the kernel refuses a route', async () => {
    const runner = new RecordingRunner({
      'ip route add 10.9.0.0/16 dev trellis0 proto 116': {
        code: 2,
        stderr: 'RTNETLINK answers: Invalid argument',
      },
    });
    const net = new LinuxNetworkConfigurator(runner);
    await expect(net.setRoutes('trellis0', ['10.9.0.0/16'])).rejects.toThrow(/Invalid argument/);
  });
});

describe('LinuxNetworkConfigurator.keepOutHosts', () => {
  it('names the default gateway and the DNS servers, also those a managed resolv.conf kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-keepout-'));
    try {
      const managed = join(dir, 'resolv.conf');
      await writeFile(
        managed,
        '# Managed by trellisd\nnameserver 100.100.100.100\n#trellis# nameserver 192.168.1.53\n#trellis# nameserver fe80::1%eth0\n',
      );
      const runner = new RecordingRunner({
        'ip -j route show default': {
          stdout: JSON.stringify([{ dst: 'default', gateway: '192.168.1.1', dev: 'eth0', protocol: 'dhcp' }]),
        },
      });
      const net = new LinuxNetworkConfigurator(runner, [managed, join(dir, 'missing.conf')]);
      expect(await net.keepOutHosts()).toEqual([
        { address: '192.168.1.1', what: 'the default gateway' },
        { address: '100.100.100.100', what: 'the DNS server' },
        { address: '192.168.1.53', what: 'the DNS server' },
      ]);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
