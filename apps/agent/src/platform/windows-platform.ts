import { join } from 'node:path';
import type { FirewallOptions } from '@trellis/firewall';
import { WindowsExitRouting } from '../exit/windows';
import { EXIT_ROUTES_FILE } from '../exit/windows-route-record';
import type { WireGuardBackend } from '../wireguard/backend';
import { selectWindowsBackend } from '../wireguard/windows';
import type { NetworkChangeEvents } from './candidates';
import { windowsNetworkEvents } from './network-events-windows';
import type { OsPlatform, OsPlatformOptions } from './os-platform';
import { selectWindowsResolver } from './resolver-windows';
import type { ResolverChoice } from './select-resolver';
import { lockWindowsStateDir } from './state-dir-windows';
import { WfpNativeEngine } from './wfp-engine-windows';
import { WindowsNetworkConfigurator } from './windows';

/**
 * Windows: wireguard-nt for WireGuard, the NetTCPIP cmdlets for addresses and routes, NRPT for
 * split DNS, half-default routes for exit nodes, .NET's NetworkChange events and the native WFP
 * engine (`firewallOptions`). The control pipe's access check is wired by the daemon.
 */
export class WindowsPlatform implements OsPlatform {
  readonly os = 'win32' as const;
  readonly network: WindowsNetworkConfigurator;
  readonly exitRouting: WindowsExitRouting;
  readonly networkEvents: NetworkChangeEvents;

  constructor(private readonly opts: OsPlatformOptions) {
    this.network = new WindowsNetworkConfigurator(opts.runner);
    this.exitRouting = new WindowsExitRouting(
      opts.runner,
      opts.logger,
      join(opts.stateDir, EXIT_ROUTES_FILE),
    );
    this.networkEvents = windowsNetworkEvents(opts.runner);
  }

  /** Owner Administrators, SYSTEM and Administrators only (state-dir-windows.ts). */
  prepareStateDir(): Promise<void> {
    return lockWindowsStateDir(this.opts.stateDir, this.opts.runner, this.opts.logger);
  }

  /** wireguard-nt names its adapter as asked. */
  interfaceOf(name: string): string {
    return name;
  }

  /** WFP through fwpuclnt.dll; the engine loads koffi and the DLL on its first call, not here. */
  firewallOptions(): FirewallOptions {
    return { windows: { engine: new WfpNativeEngine() } };
  }

  /** wireguard-nt (refuses `--wireguard userspace`: there is none on Windows). */
  async wireguard(): Promise<WireGuardBackend> {
    return selectWindowsBackend(this.opts.wireguard, this.opts.interfaceName, this.opts.logger);
  }

  async resolver(): Promise<ResolverChoice> {
    return selectWindowsResolver(this.opts.dns, this.opts.interfaceName, this.opts.runner, this.opts.logger);
  }
}
