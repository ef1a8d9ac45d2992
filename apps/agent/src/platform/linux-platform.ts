import type { FirewallOptions } from '@trellis/firewall';
import { LinuxExitRouting } from '../exit/linux';
import type { WireGuardBackend } from '../wireguard/backend';
import { selectBackend } from '../wireguard/select-backend';
import type { NetworkChangeEvents } from './candidates';
import { LinuxNetworkConfigurator } from './linux';
import { watchLinuxNetworkEvents } from './network-events-linux';
import type { OsPlatform, OsPlatformOptions } from './os-platform';
import { type ResolverChoice, selectResolver } from './select-resolver';

/** Linux: the kernel module or wireguard-go, iproute2, systemd-resolved or resolv.conf, netlink events. */
export class LinuxPlatform implements OsPlatform {
  readonly os = 'linux' as const;
  readonly network: LinuxNetworkConfigurator;
  readonly exitRouting: LinuxExitRouting;
  readonly networkEvents: NetworkChangeEvents = watchLinuxNetworkEvents;

  constructor(private readonly o: OsPlatformOptions) {
    this.network = new LinuxNetworkConfigurator(o.runner);
    this.exitRouting = new LinuxExitRouting(o.runner, o.logger);
  }

  interfaceOf(name: string): string {
    return name;
  }

  /** Mode 0700 (StateStore.init) is enough here. */
  prepareStateDir(): Promise<void> {
    return Promise.resolve();
  }

  /** nftables with its defaults. */
  firewallOptions(): FirewallOptions {
    return {};
  }

  wireguard(): Promise<WireGuardBackend> {
    return selectBackend(
      this.o.wireguard,
      this.o.interfaceName,
      this.o.stateDir,
      this.o.runner,
      this.o.logger,
    );
  }

  resolver(): Promise<ResolverChoice> {
    return selectResolver(this.o.dns, this.o.resolvConf, this.o.stateDir, this.o.runner, this.o.logger);
  }
}
