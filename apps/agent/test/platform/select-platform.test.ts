import { selectFirewallBackend } from '@trellis/firewall';
import pino from 'pino';
import { DarwinNetworkConfigurator } from '../../src/platform/darwin';
import { DarwinPlatform } from '../../src/platform/darwin-platform';
import { defaultSocket, defaultStateDir } from '../../src/platform/default-paths';
import { LinuxNetworkConfigurator } from '../../src/platform/linux';
import { LinuxPlatform } from '../../src/platform/linux-platform';
import type { OsPlatformOptions } from '../../src/platform/os-platform';
import { selectPlatform } from '../../src/platform/select-platform';
import { WindowsNetworkConfigurator } from '../../src/platform/windows';
import { WindowsPlatform } from '../../src/platform/windows-platform';
import { RecordingRunner } from '../helpers/recording-runner';

const options = (runner = new RecordingRunner()): OsPlatformOptions => ({
  interfaceName: 'trellis0',
  stateDir: '/tmp/trellis-select-platform',
  wireguard: 'auto',
  dns: 'auto',
  resolvConf: '/etc/resolv.conf',
  runner,
  logger: pino({ level: 'silent' }),
});

describe('selectPlatform', () => {
  it.each([
    ['linux', LinuxPlatform, LinuxNetworkConfigurator],
    ['darwin', DarwinPlatform, DarwinNetworkConfigurator],
    ['win32', WindowsPlatform, WindowsNetworkConfigurator],
  ] as const)(
    '%s: its own services, each present, and nothing run on the OS by choosing',
    (os, Platform, Network) => {
      const runner = new RecordingRunner();
      const platform = selectPlatform(os, options(runner));
      expect(platform).toBeInstanceOf(Platform);
      expect(platform.os).toBe(os);
      expect(platform.network).toBeInstanceOf(Network);
      expect(platform.exitRouting).not.toBeNull();
      expect(platform.networkEvents).not.toBeNull();
      expect(runner.calls).toEqual([]);
    },
  );

  it.each([
    ['linux', 'nftables'],
    ['darwin', 'pf'],
    ['win32', 'wfp'],
  ] as const)('%s: its firewall options select the %s backend, running nothing', (os, name) => {
    const runner = new RecordingRunner();
    const platform = selectPlatform(os, options(runner));
    const firewall = selectFirewallBackend(os, platform.firewallOptions());
    expect(firewall.name).toBe(name);
    expect(runner.calls).toEqual([]);
  });

  it("names the mesh interface as the OS does: macOS' utun once WireGuard has one, the same elsewhere", () => {
    expect(selectPlatform('linux', options()).interfaceOf('trellis0')).toBe('trellis0');
    expect(selectPlatform('win32', options()).interfaceOf('trellis0')).toBe('trellis0');
    const mac = selectPlatform('darwin', options()) as DarwinPlatform;
    expect(() => mac.interfaceOf('trellis0')).toThrow('trellis0 has no utun interface');
    mac.utun.set('utun7');
    expect(mac.interfaceOf('trellis0')).toBe('utun7');
    expect(mac.interfaceOf('en0')).toBe('en0');
  });

  it('refuses another OS by name', () => {
    expect(() => selectPlatform('freebsd', options())).toThrow(
      'trellisd does not run on freebsd: Linux, macOS and Windows only',
    );
  });
});

describe('default paths', () => {
  it('state in /var/lib on Linux and macOS, ProgramData on Windows', () => {
    expect(defaultStateDir('linux', {})).toBe('/var/lib/trellis');
    expect(defaultStateDir('darwin', {})).toBe('/var/lib/trellis');
    expect(defaultStateDir('win32', { ProgramData: 'D:\\Data' })).toBe('D:\\Data\\Trellis');
    expect(defaultStateDir('win32', {})).toBe('C:\\ProgramData\\Trellis');
  });

  it('a unix socket in the state directory, a named pipe on Windows', () => {
    expect(defaultSocket('/var/lib/trellis', 'linux')).toBe('/var/lib/trellis/trellisd.sock');
    expect(defaultSocket('/var/lib/trellis', 'darwin')).toBe('/var/lib/trellis/trellisd.sock');
    expect(defaultSocket('C:\\ProgramData\\Trellis', 'win32')).toBe('\\\\.\\pipe\\trellisd');
  });
});
