import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { DnsMode } from '../daemon-options';
import type { Upstream } from '../dns/upstream-forwarder';
import { writeFileAtomic } from '../state/atomic-file';
import type { CommandRunner } from '../util/command-runner';
import { DarwinServiceDns } from './darwin-service-dns';
import type { ResolverConfigurator, ResolverSettings } from './resolver-configurator';
import type { ResolverChoice } from './select-resolver';

export const RESOLVER_DIR = '/etc/resolver';
/** The first line of every /etc/resolver file this agent wrote: only those are ever removed. */
export const RESOLVER_MARK = '# Managed by trellisd';
const DOMAIN_RE =
  /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * Split DNS on macOS: `/etc/resolver/<domain>` names the stub for that domain (resolver(5); the
 * system's resolver reads the directory as it changes), everything else goes where it went. With
 * an exit node every name must come to the stub: then every network service's DNS servers are
 * set to it too (darwin-service-dns.ts). Files carry a mark; `restore` removes ours and no other.
 */
export class DarwinResolverConfigurator implements ResolverConfigurator {
  readonly kind = 'resolver-dir' as const;

  constructor(
    private readonly services: Pick<DarwinServiceDns, 'pointAll' | 'restore'>,
    private readonly log: Logger,
    private readonly dir = RESOLVER_DIR,
  ) {}

  async apply(s: ResolverSettings): Promise<void> {
    const domain = s.domain.toLowerCase().replace(/\.$/, '');
    if (!DOMAIN_RE.test(domain))
      throw new Error(`not a domain name for ${this.dir}: ${JSON.stringify(s.domain)}`);
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    // The domain changed: the old file must not keep sending names to us.
    await this.removeOurs((name) => name !== domain);
    const path = join(this.dir, domain);
    const want = resolverFile(domain, s.server);
    const current = await readFile(path, 'utf8').catch(() => null);
    if (current !== null && !current.startsWith(RESOLVER_MARK)) {
      throw new Error(`${path} exists and was not written by trellisd: left as it is`);
    }
    if (current !== want) {
      await writeFileAtomic(path, want, 0o644);
      this.log.info({ path, server: s.server }, 'resolver file written');
    }
    if (s.defaultRoute === true) await this.services.pointAll(s.server);
    else await this.services.restore();
  }

  async restore(): Promise<void> {
    await this.services.restore();
    await this.removeOurs(() => true);
  }

  /** Only the domain comes here (and, with an exit node, MeshDns forwards to the exit node). */
  async upstreams(): Promise<Upstream[]> {
    return [];
  }

  private async removeOurs(which: (name: string) => boolean): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!which(name)) continue;
      const path = join(this.dir, name);
      const text = await readFile(path, 'utf8').catch(() => '');
      if (!text.startsWith(RESOLVER_MARK)) continue;
      await rm(path, { force: true });
      this.log.info({ path }, 'resolver file removed');
    }
  }
}

/** The file for one domain: the stub, port 53 (resolver(5)). */
export function resolverFile(domain: string, server: string): string {
  return [
    `${RESOLVER_MARK}: names in ${domain} are answered by the Trellis agent.`,
    '# Removed on `trellis down`, when trellisd stops, and at its next start after a crash.',
    `nameserver ${server}`,
    'port 53',
    '',
  ].join('\n');
}

/** `--dns MODE` on macOS: `auto` is the resolver directory; the Linux modes do not exist here. */
export function selectDarwinResolver(
  mode: DnsMode,
  stateDir: string,
  runner: CommandRunner,
  log: Logger,
  dir = RESOLVER_DIR,
): ResolverChoice {
  if (mode === 'resolved' || mode === 'resolv-conf') {
    throw new Error(`--dns ${mode} is for Linux; on macOS use auto (/etc/resolver), stub or off`);
  }
  const resolver = new DarwinResolverConfigurator(new DarwinServiceDns(runner, stateDir, log), log, dir);
  return {
    resolver: mode === 'auto' ? resolver : null,
    // Whatever the mode was then: a crashed run's files and service settings name a dead stub.
    recover: () => resolver.restore(),
  };
}
