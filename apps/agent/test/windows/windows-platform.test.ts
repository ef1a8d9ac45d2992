import { WindowsExitRouting } from '../../src/exit/windows';
import type { OsPlatformOptions } from '../../src/platform/os-platform';
import { WindowsNetworkConfigurator } from '../../src/platform/windows';
import { WindowsPlatform } from '../../src/platform/windows-platform';
import { capturingLogger, IFACE, laptop } from './scenario';

function options(extra: Partial<OsPlatformOptions> = {}): OsPlatformOptions {
  return {
    interfaceName: IFACE,
    stateDir: 'C:\\ProgramData\\Trellis',
    wireguard: 'auto',
    dns: 'auto',
    resolvConf: '',
    runner: laptop(),
    logger: capturingLogger([]),
    ...extra,
  };
}

describe('WindowsPlatform', () => {
  it('puts the Windows parts behind OsPlatform', async () => {
    const p = new WindowsPlatform(options());
    expect(p.os).toBe('win32');
    expect(p.network).toBeInstanceOf(WindowsNetworkConfigurator);
    expect(p.exitRouting).toBeInstanceOf(WindowsExitRouting);
    expect(typeof p.networkEvents).toBe('function');
    expect((await p.resolver()).resolver?.kind).toBe('nrpt');
    expect((await new WindowsPlatform(options({ dns: 'off' })).resolver()).resolver).toBeNull();
  });

  it('refuses the Linux-only choices', async () => {
    await expect(new WindowsPlatform(options({ dns: 'resolved' })).resolver()).rejects.toThrow(/for Linux/);
    await expect(new WindowsPlatform(options({ wireguard: 'userspace' })).wireguard()).rejects.toThrow(
      /userspace is not available on Windows/,
    );
  });
});
