import type { Logger } from 'pino';
import { realTimers, type Timers } from '../control/timers';
import type { Upstream } from '../dns/upstream-forwarder';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { ResolverConfigurator, ResolverSettings } from './resolver-configurator';

/** resolved's stub listener: a resolv.conf pointing here means resolved does the resolving. */
export const RESOLVED_STUB = '127.0.0.53';
/** How often the link's settings are read back while an exit node is in use (three `resolvectl` runs). */
const CHECK_INTERVAL_MS = 5000;

/**
 * systemd-resolved: the stub as the WireGuard link's DNS server and the account's domain as that
 * link's search and routing domain, so only those names come to us (`resolvectl`, the same D-Bus
 * calls NetworkManager makes). The link is the default route for other names only while an exit
 * node is in use, and carries no LLMNR or mDNS. resolved
 * forgets a link's settings when the link goes; `restore` reverts them while it is still there.
 *
 * resolved can also drop them under us (`resolvectl revert`, the link re-created by a restarted
 * wireguard-go): with an exit node that sends names to the LAN's resolver in clear. So `apply`
 * reads them back rather than trusting what it set last, and `watch` reads them back periodically
 * while an exit node is in use.
 */
export class ResolvedConfigurator implements ResolverConfigurator {
  readonly kind = 'resolved' as const;
  /** What the link should carry (set on apply, even one that failed, so the watch retries it). */
  private wanted: ResolverSettings | null = null;
  /** The settings last applied in full: for telling "lost" from "changed" in the log. */
  private applied: ResolverSettings | null = null;
  /** The running watches, told when `wanted` changes (they poll only with an exit node). */
  private readonly watchers = new Set<() => void>();

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly timers: Timers = realTimers,
    private readonly checkIntervalMs = CHECK_INTERVAL_MS,
  ) {}

  async apply(s: ResolverSettings): Promise<void> {
    this.want(s);
    if (await this.inPlace(s)) return;
    const lost = this.applied !== null && sameSettings(this.applied, s);
    const all = s.defaultRoute === true;
    await runChecked(this.runner, 'resolvectl', ['dns', s.interfaceName, s.server]);
    // `~.`: with an exit node, every name is routed to the stub (only more specific domains of
    // other links, a LAN's own, still go there), so none goes to the LAN's resolver in clear.
    // One call sets the whole list, so a link that has `~.` keeps it until this replaces it.
    await runChecked(this.runner, 'resolvectl', ['domain', s.interfaceName, ...wantedDomains(s)]);
    await runChecked(this.runner, 'resolvectl', ['default-route', s.interfaceName, String(all)]);
    // Multicast name discovery has nothing to find across WireGuard, and would tell peers our queries.
    await runChecked(this.runner, 'resolvectl', ['llmnr', s.interfaceName, 'no']);
    await runChecked(this.runner, 'resolvectl', ['mdns', s.interfaceName, 'no']);
    this.applied = s;
    const fields = { link: s.interfaceName, domain: s.domain, server: s.server, defaultRoute: all };
    if (lost) this.log.warn(fields, 'systemd-resolved had dropped the link settings: applied again');
    else this.log.info(fields, 'systemd-resolved configured');
  }

  async restore(interfaceName: string): Promise<void> {
    this.want(null);
    this.applied = null;
    const r = await this.runner.run('resolvectl', ['revert', interfaceName]);
    // The link is gone (down removed it, or it never came up): resolved dropped its settings with it.
    if (r.code !== 0 && !/No such device|not found|Failed to resolve interface/i.test(r.stderr)) {
      this.log.warn({ link: interfaceName, err: r.stderr.trim() }, 'resolvectl revert failed');
    }
  }

  /**
   * Calls back when the link no longer carries what the last apply wanted. Checked every few
   * seconds only while an exit node is in use: losing the domain alone costs the mesh's names,
   * losing `~.` sends every name to the LAN's resolver in clear.
   */
  watch(onChange: () => void): () => void {
    let stopped = false;
    let handle: unknown = null;
    const check = async () => {
      handle = null;
      const want = this.wanted;
      const ok = want === null || (await this.inPlace(want).catch(() => false));
      if (stopped) return;
      if (!ok && want === this.wanted) onChange();
      follow();
    };
    /** Polls while the wanted settings need it, and not otherwise. */
    const follow = () => {
      if (stopped) return;
      const poll = this.wanted?.defaultRoute === true;
      if (poll && handle === null) {
        handle = this.timers.setTimeout(() => void check(), this.checkIntervalMs);
        // Never what keeps the daemon running.
        (handle as { unref?: () => void } | null)?.unref?.();
      } else if (!poll && handle !== null) {
        this.timers.clearTimeout(handle);
        handle = null;
      }
    };
    this.watchers.add(follow);
    follow();
    return () => {
      stopped = true;
      this.watchers.delete(follow);
      if (handle !== null) this.timers.clearTimeout(handle);
      handle = null;
    };
  }

  private want(s: ResolverSettings | null): void {
    this.wanted = s;
    for (const follow of this.watchers) follow();
  }

  async upstreams(): Promise<Upstream[]> {
    return [];
  }

  /** Whether resolved has the link as `s` wants it: server, domains (with `~.`) and default route. */
  private async inPlace(s: ResolverSettings): Promise<boolean> {
    const link = s.interfaceName;
    const domains = await this.readBack(['domain', link]);
    const want = wantedDomains(s).map(normalDomain);
    if (domains === null || !sameSet(domains.map(normalDomain), want)) return false;
    const route = await this.readBack(['default-route', link]);
    if (route?.length !== 1 || parseYes(route[0] ?? '') !== (s.defaultRoute === true)) return false;
    const servers = await this.readBack(['dns', link]);
    return servers !== null && servers.length === 1 && serverIs(servers[0] ?? '', s.server);
  }

  /** The values `resolvectl VERB LINK` prints after `Link N (LINK):`; null when it failed. */
  private async readBack(args: string[]): Promise<string[] | null> {
    const r = await this.runner.run('resolvectl', args);
    if (r.code !== 0) return null;
    return linkValues(r.stdout, args[1] ?? '');
  }
}

/**
 * The values after `Link N (LINK):` in resolvectl's output. Recent systemd wraps them at the width
 * (80 when stdout is no terminal): the rest follows on lines that start with blanks and carry no
 * marker. Colour codes are dropped too (the runner cannot set SYSTEMD_COLORS=0).
 */
export function linkValues(stdout: string, link: string): string[] | null {
  const lines = stdout.replace(ANSI_ESCAPE, '').split('\n');
  const marker = `(${link}):`;
  const at = lines.findIndex((l) => l.includes(marker));
  const line = lines[at];
  if (line === undefined) return null;
  let values = line.slice(line.indexOf(marker) + marker.length);
  for (const more of lines.slice(at + 1)) {
    if (!/^\s+\S/.test(more)) break;
    values += ` ${more}`;
  }
  const trimmed = values.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what a colour code starts with.
const ANSI_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;

function wantedDomains(s: ResolverSettings): string[] {
  return s.defaultRoute === true ? [s.domain, '~.'] : [s.domain];
}

function sameSettings(a: ResolverSettings, b: ResolverSettings): boolean {
  return (
    a.interfaceName === b.interfaceName &&
    a.server === b.server &&
    a.domain === b.domain &&
    (a.defaultRoute === true) === (b.defaultRoute === true)
  );
}

/** Domains compare case-insensitively, with or without a trailing dot (`~.` kept as it is). */
function normalDomain(d: string): string {
  const lower = d.toLowerCase();
  return lower.length > 2 && lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x)) && b.every((x) => a.includes(x));
}

function parseYes(v: string): boolean | null {
  if (/^(yes|true|1)$/i.test(v)) return true;
  if (/^(no|false|0)$/i.test(v)) return false;
  return null;
}

/** A server as resolvectl prints it: `ADDR`, or with `:PORT`, `%IFINDEX`, `#NAME` (`[ADDR]` for IPv6). */
function serverIs(printed: string, server: string): boolean {
  if (printed === server || printed.startsWith(`[${server}]`)) return true;
  // A colon after an IPv6 address would be more of the address, not a port.
  const suffix = server.includes(':') ? /^[%#]/ : /^[:%#]/;
  return printed.startsWith(server) && suffix.test(printed.slice(server.length));
}

/** Whether systemd-resolved answers on this machine (and the resolv.conf given points at it). */
export async function resolvedInCharge(runner: CommandRunner, resolvConf: string): Promise<boolean> {
  const viaStub = resolvConf
    .split('\n')
    .some((l) => l.trim().split(/\s+/)[0] === 'nameserver' && l.trim().split(/\s+/)[1] === RESOLVED_STUB);
  if (!viaStub) return false;
  const r = await runner.run('resolvectl', ['status']).catch(() => null);
  return r?.code === 0;
}
