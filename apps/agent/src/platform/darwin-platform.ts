import type { FirewallOptions } from '@trellis/firewall';
import { DarwinExitRouting } from '../exit/darwin';
import { DarwinWireGuardBackend } from '../wireguard/darwin';
import type { NetworkChangeEvents } from './candidates';
import { DarwinNetworkConfigurator } from './darwin';
import { UtunName } from './darwin-interface';
import { darwinNetworkEvents } from './network-events-darwin';
import type { OsPlatform, OsPlatformOptions } from './os-platform';
import { selectDarwinResolver } from './resolver-darwin';
import type { ResolverChoice } from './select-resolver';

/** Where tests put what is /etc/resolver and /var/run/wireguard on a Mac, and how soon wireguard-go restarts. */
export interface DarwinPlatformExtras {
  resolverDir?: string;
  uapiSocketDir?: string;
  restartDelayMs?: number;
}

/**
 * macOS: wireguard-go on a utun, ifconfig/route, /etc/resolver split DNS, exit routing with plain
 * routes, `route -n monitor` events. One UtunName is shared by all of them: the agent keeps using
 * its logical interface name, and each part maps it to the utun the backend got.
 */
export class DarwinPlatform implements OsPlatform {
  readonly os = 'darwin' as const;
  readonly utun: UtunName;
  readonly network: DarwinNetworkConfigurator;
  readonly exitRouting: DarwinExitRouting;
  readonly networkEvents: NetworkChangeEvents;
  private readonly backend: DarwinWireGuardBackend;

  constructor(
    private readonly opts: OsPlatformOptions,
    private readonly paths: DarwinPlatformExtras = {},
  ) {
    if (opts.wireguard === 'kernel')
      throw new Error('--wireguard kernel: macOS has no kernel WireGuard; use auto');
    this.utun = new UtunName(opts.interfaceName);
    this.backend = new DarwinWireGuardBackend({
      utun: this.utun,
      runner: opts.runner,
      logger: opts.logger,
      stateDir: opts.stateDir,
      ...(paths.uapiSocketDir ? { socketDir: paths.uapiSocketDir } : {}),
      ...(paths.restartDelayMs !== undefined ? { restartDelayMs: paths.restartDelayMs } : {}),
    });
    this.network = new DarwinNetworkConfigurator(this.utun, opts.runner);
    this.networkEvents = darwinNetworkEvents(opts.runner);
    this.exitRouting = new DarwinExitRouting(
      this.utun,
      opts.runner,
      opts.logger.child({ part: 'exit-routing' }),
      async () => {
        if (this.utun.utun === null) return [];
        const state = await this.backend.getState();
        return state.peers.map((p) => p.endpoint).filter((e): e is string => e !== null);
      },
      this.networkEvents,
    );
    // A peer endpoint set or dropped by the agent: its host route follows at once.
    this.backend.onEndpointsChanged(() => {
      this.exitRouting
        .refresh()
        .catch((err: Error) => opts.logger.error({ err: err.message }, 'exit routing refresh failed'));
    });
  }

  /** The utun wireguard-go got (the pf anchor's rules name it). */
  interfaceOf(name: string): string {
    return this.utun.resolve(name);
  }

  /** Mode 0700 (StateStore.init) is enough here. */
  prepareStateDir(): Promise<void> {
    return Promise.resolve();
  }

  /** pf with its defaults. */
  firewallOptions(): FirewallOptions {
    return {};
  }

  async wireguard(): Promise<DarwinWireGuardBackend> {
    return this.backend;
  }

  async resolver(): Promise<ResolverChoice> {
    const { dns, stateDir, runner, logger } = this.opts;
    return selectDarwinResolver(dns, stateDir, runner, logger, this.paths.resolverDir);
  }
}
