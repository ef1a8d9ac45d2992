import type { FirewallBackend } from './backend';
import { NftablesBackend, type NftablesOptions } from './nftables';
import { PfBackend, type PfOptions } from './pf';
import type { CommandRunner } from './runner';
import { WfpBackend, type WfpOptions } from './wfp';

export interface FirewallOptions {
  /** Runner for nft/conntrack/pfctl (default: child_process without a shell). */
  run?: CommandRunner;
  nftables?: Omit<NftablesOptions, 'run'>;
  pf?: Omit<PfOptions, 'run'>;
  /** Windows needs an engine: the agent gives its native one (WfpNativeEngine, over fwpuclnt.dll). */
  windows?: WfpOptions;
}

/** The backend for `platform` (process.platform): nftables on Linux, pf on macOS, WFP on Windows. */
export function selectFirewallBackend(
  platform: NodeJS.Platform,
  options: FirewallOptions = {},
): FirewallBackend {
  const run = options.run ? { run: options.run } : {};
  switch (platform) {
    case 'linux':
      return new NftablesBackend({ ...options.nftables, ...run });
    case 'darwin':
      return new PfBackend({ ...options.pf, ...run });
    case 'win32':
      if (!options.windows) {
        throw new Error(
          'no WFP engine given: the caller supplies the native engine (the agent: WfpNativeEngine)',
        );
      }
      return new WfpBackend(options.windows);
    default:
      throw new Error(`no firewall backend for platform ${platform}`);
  }
}
