import { WindowsExitRouting } from '../exit/windows';
import type { WireGuardBackend } from '../wireguard/backend';
import { selectWindowsBackend } from '../wireguard/windows';
import type { NetworkChangeEvents } from './candidates';
import { windowsNetworkEvents } from './network-events-windows';
import type { OsPlatform, OsPlatformOptions } from './os-platform';
import { selectWindowsResolver } from './resolver-windows';
import type { ResolverChoice } from './select-resolver';
import { WindowsNetworkConfigurator } from './windows';

/**
 * Windows: wireguard-nt for WireGuard, the NetTCPIP cmdlets for addresses and routes, NRPT for
 * split DNS, half-default routes for exit nodes and .NET's NetworkChange events. The firewall
 * (WFP) and the control pipe's access check are wired by the daemon, not here.
 */
export class WindowsPlatform implements OsPlatform {
  readonly os = 'win32' as const;
  readonly network: WindowsNetworkConfigurator;
  readonly exitRouting: WindowsExitRouting;
  readonly networkEvents: NetworkChangeEvents;

  constructor(private readonly opts: OsPlatformOptions) {
    this.network = new WindowsNetworkConfigurator(opts.runner);
    this.exitRouting = new WindowsExitRouting(opts.runner, opts.logger);
    this.networkEvents = windowsNetworkEvents(opts.runner);
  }

  /** wireguard-nt names its adapter as asked. */
  interfaceOf(name: string): string {
    return name;
  }

  /** wireguard-nt (refuses `--wireguard userspace`: there is none on Windows). */
  async wireguard(): Promise<WireGuardBackend> {
    return selectWindowsBackend(this.opts.wireguard, this.opts.interfaceName, this.opts.logger);
  }

  async resolver(): Promise<ResolverChoice> {
    return selectWindowsResolver(this.opts.dns, this.opts.interfaceName, this.opts.runner, this.opts.logger);
  }
}
