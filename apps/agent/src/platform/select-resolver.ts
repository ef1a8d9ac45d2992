import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { DnsMode } from '../daemon-options';
import type { CommandRunner } from '../util/command-runner';
import { ResolvConfConfigurator } from './resolv-conf';
import { ResolvedConfigurator, resolvedInCharge } from './resolved';
import type { ResolverConfigurator } from './resolver-configurator';

export interface ResolverChoice {
  /** What points the OS at the stub; null: nothing does (`stub`, `off`). */
  resolver: ResolverConfigurator | null;
  /** Undoes what a run that crashed left, whatever the mode was then. */
  recover(interfaceName: string): Promise<void>;
}

/** The resolver configurator for `--dns MODE` (Linux: systemd-resolved or a plain resolv.conf). */
export async function selectResolver(
  mode: DnsMode,
  resolvConf: string,
  stateDir: string,
  runner: CommandRunner,
  log: Logger,
): Promise<ResolverChoice> {
  const plain = new ResolvConfConfigurator(resolvConf, stateDir, log);
  const resolved = new ResolvedConfigurator(runner, log);
  let resolver: ResolverConfigurator | null = null;
  if (mode === 'resolved') resolver = resolved;
  else if (mode === 'resolv-conf') resolver = plain;
  else if (mode === 'auto') {
    const text = await readFile(resolvConf, 'utf8').catch(() => '');
    resolver = (await resolvedInCharge(runner, text)) ? resolved : plain;
  }
  return {
    resolver,
    recover: async (interfaceName) => {
      // A backup left behind means the file may still name the dead stub.
      await plain.restore();
      if (resolver === resolved) await resolved.restore(interfaceName);
    },
  };
}
