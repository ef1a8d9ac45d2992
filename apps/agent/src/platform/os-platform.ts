import type { FirewallOptions } from '@trellis/firewall';
import type { Logger } from 'pino';
import type { DnsMode } from '../daemon-options';
import type { ExitRouting } from '../exit/exit-routing';
import type { CommandRunner } from '../util/command-runner';
import type { WireGuardBackend, WireGuardMode } from '../wireguard/backend';
import type { NetworkChangeEvents } from './candidates';
import type { NetworkConfigurator } from './network-configurator';
import type { ResolverChoice } from './select-resolver';

/** What trellisd was started with that the OS services depend on. */
export interface OsPlatformOptions {
  /** The name the agent knows the mesh interface by (macOS maps it to the utun it gets). */
  interfaceName: string;
  stateDir: string;
  wireguard: WireGuardMode;
  dns: DnsMode;
  /** Linux only: the resolv.conf the plain resolver manages. */
  resolvConf: string;
  runner: CommandRunner;
  logger: Logger;
}

/**
 * The OS around the agent: WireGuard, addresses and routes, split DNS, exit-node routing and
 * network change events. One implementation per OS (`linux-platform.ts`, `darwin-platform.ts`,
 * `windows-platform.ts`), picked by `selectPlatform` from `process.platform`.
 */
export interface OsPlatform {
  readonly os: 'linux' | 'darwin' | 'win32';
  /**
   * Run at start before anything is written to the state directory. Windows ignores mode 0700:
   * it locks the directory to SYSTEM and Administrators there; elsewhere nothing.
   */
  prepareStateDir(): Promise<void>;
  wireguard(): Promise<WireGuardBackend>;
  readonly network: NetworkConfigurator;
  resolver(): Promise<ResolverChoice>;
  /** Null: exit nodes cannot be used on this OS. */
  readonly exitRouting: ExitRouting | null;
  /** Address, link and route change events; null: the candidate watcher's periodic re-read alone. */
  readonly networkEvents: NetworkChangeEvents | null;
  /** The OS's name of the mesh interface while WireGuard runs (macOS: its utun; elsewhere the same). */
  interfaceOf(name: string): string;
  /** What `selectFirewallBackend` needs from this OS (Windows: the native WFP engine). */
  firewallOptions(): FirewallOptions;
}
