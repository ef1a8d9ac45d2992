import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { ExitRouting, ExitRoutingPlan } from './exit-routing';

/**
 * Our routing table: "tr" in ASCII, like the mark. wg-quick uses 51820 and Tailscale 52, so
 * neither is touched and both can be installed next to us.
 */
export const EXIT_TABLE = 29810;
/** Rule priorities; everything in [FIRST, LAST] with one of our shapes is ours. */
export const EXIT_PRIORITY = { bypass: 5300, lan: 5310, tunnel: 5320 } as const;
const FIRST = 5300;
const LAST = 5329;
/** Below the tunnel's default route: it stays when the interface goes, so nothing falls through. */
const FALLBACK_METRIC = 2147483647;
const INTERFACE_RE = /^[A-Za-z0-9_.-]{1,15}$/;

type Family = 4 | 6;

interface Rule {
  family: Family;
  priority: number;
  /** `a.b.c.d/n` or an IPv6 prefix. */
  to?: string;
  notFwmark?: number;
  suppress?: true;
  table: string;
}

interface Route {
  family: Family;
  type: 'unicast' | 'unreachable';
  dev?: string;
  metric: number;
}

/**
 * Linux policy routing, as wg-quick does it, in a table and priorities of its own:
 * - 5300 `to ADDR table main` for each bypass address, and IPv6 link-local (fe80::/10);
 * - 5310 `table main suppress_prefixlength 0` only with allowLan: every main route but the default
 *   (the LAN, other VPNs) still wins;
 * - 5320 `not fwmark 0x7472 table 29810`: the rest goes to our table, whose IPv4 default route is
 *   the mesh interface and whose last resort (IPv4 and IPv6) is `unreachable`.
 * IPv6 is never carried (the overlay is IPv4): with an exit node wanted it is refused at once
 * (ENETUNREACH, so programs fall back to IPv4) instead of leaving by the ISP. Rules outlive a killed
 * agent and a removed interface: fail closed until `remove`.
 */
export class LinuxExitRouting implements ExitRouting {
  private checkedRpFilter = false;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

  async apply(plan: ExitRoutingPlan): Promise<void> {
    if (!INTERFACE_RE.test(plan.interfaceName)) {
      throw new Error(`refusing to route into interface ${JSON.stringify(plan.interfaceName)}`);
    }
    const rules = this.wantedRules(plan);
    await this.warnStrictRpFilter();
    // The mesh interface may be missing (not up yet, re-created): blocked until it is, never open.
    let noTunnel: Error | null = null;
    // Family by family, IPv4 first: a failure with IPv6 must not leave IPv4 going to the ISP.
    for (const family of [4, 6] as const) {
      try {
        noTunnel = (await this.applyFamily(family, plan.interfaceName, rules)) ?? noTunnel;
      } catch (err) {
        if (family === 6 && noIpv6(err)) continue; // IPv6 disabled on this host: nothing to block
        throw err;
      }
    }
    if (noTunnel) throw noTunnel;
  }

  /** One family's table and rules; returns (not throws) a missing mesh interface. */
  private async applyFamily(family: Family, interfaceName: string, rules: Rule[]): Promise<Error | null> {
    let noTunnel: Error | null = null;
    const have = await this.routes(family);
    const want = wantedRoutes(interfaceName).filter((r) => r.family === family);
    // The last resort first, and added before the old ones go: never a moment without one.
    for (const r of want) {
      if (have.some((h) => routeKey(h) === routeKey(r))) continue;
      try {
        await this.route('add', r);
      } catch (err) {
        if (r.type !== 'unicast') throw err;
        noTunnel = err as Error;
      }
    }
    for (const r of have) if (!want.some((w) => routeKey(w) === routeKey(r))) await this.route('del', r);
    const haveRules = await this.rules(family);
    // Descending: the tunnel rule first, so a failure later leaves traffic in the tunnel (closed).
    const wantRules = rules.filter((r) => r.family === family).sort((a, b) => b.priority - a.priority);
    for (const r of wantRules) {
      if (!haveRules.some((h) => ruleKey(h) === ruleKey(r))) await this.rule('add', r);
    }
    for (const r of haveRules) {
      if (!wantRules.some((w) => ruleKey(w) === ruleKey(r))) await this.rule('del', r);
    }
    return noTunnel;
  }

  async remove(): Promise<void> {
    for (const family of [4, 6] as const) {
      try {
        // The tunnel rule first: traffic goes back to the main table before the bypasses go.
        const have = (await this.rules(family)).sort((a, b) => b.priority - a.priority);
        for (const r of have) await this.rule('del', r);
        for (const r of await this.routes(family)) await this.route('del', r);
      } catch (err) {
        if (family === 6 && noIpv6(err)) continue;
        throw err;
      }
    }
  }

  /**
   * Strict reverse-path filtering looks up a packet's source without its mark: WireGuard's UDP
   * from a peer's direct endpoint then seems to belong to the tunnel and is dropped (relays and
   * reflectors are bypassed, so they still work). wg-quick sets src_valid_mark and restores the
   * mark with conntrack; we only say so, once.
   */
  private async warnStrictRpFilter(): Promise<void> {
    if (this.checkedRpFilter) return;
    this.checkedRpFilter = true;
    const r = await this.runner.run('sysctl', ['-n', 'net.ipv4.conf.all.rp_filter']).catch(() => null);
    if (r?.code === 0 && r.stdout.trim() === '1') {
      this.log.warn(
        'net.ipv4.conf.all.rp_filter is 1 (strict): direct paths to peers may fail while an exit node is used; set it to 2 (loose)',
      );
    }
  }

  private wantedRules(plan: ExitRoutingPlan): Rule[] {
    const table = String(EXIT_TABLE);
    const out: Rule[] = [];
    const seen = new Set<string>();
    for (const raw of plan.bypass) {
      const address = canonicalAddress(raw);
      if (address === null) {
        this.log.warn({ address: raw }, 'not an IP address: no direct path kept for it');
        continue;
      }
      const family: Family = address.includes(':') ? 6 : 4;
      const to = `${address}/${family === 4 ? 32 : 128}`;
      if (seen.has(to)) continue;
      seen.add(to);
      out.push({ family, priority: EXIT_PRIORITY.bypass, to, table: 'main' });
    }
    out.push({ family: 6, priority: EXIT_PRIORITY.bypass, to: 'fe80::/10', table: 'main' });
    for (const family of [4, 6] as const) {
      if (plan.allowLan) out.push({ family, priority: EXIT_PRIORITY.lan, suppress: true, table: 'main' });
      out.push({ family, priority: EXIT_PRIORITY.tunnel, notFwmark: plan.fwmark, table });
    }
    return out;
  }

  /** Our rules in place now (priorities in our range, shapes we add). */
  private async rules(family: Family): Promise<Rule[]> {
    const text = await runChecked(this.runner, 'ip', [...fam(family), '-j', 'rule', 'show']);
    return (JSON.parse(text || '[]') as RuleJson[])
      .map((j) => ruleOf(family, j))
      .filter((r): r is Rule => r !== null);
  }

  private async routes(family: Family): Promise<Route[]> {
    const args = [...fam(family), '-j', 'route', 'show', 'table', String(EXIT_TABLE)];
    const r = await this.runner.run('ip', args);
    if (r.code !== 0) {
      if (/does not exist/i.test(r.stderr)) return []; // no route ever added to the table
      throw new Error(`ip ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    const out: Route[] = [];
    for (const j of JSON.parse(r.stdout || '[]') as RouteJson[]) {
      if (j.dst !== 'default') continue;
      const type = j.type ?? 'unicast';
      if (type !== 'unicast' && type !== 'unreachable') continue;
      const metric = j.metric ?? 0;
      out.push(type === 'unicast' ? { family, type, dev: j.dev, metric } : { family, type, metric });
    }
    return out;
  }

  private async rule(verb: 'add' | 'del', r: Rule): Promise<void> {
    const args = [...fam(r.family), 'rule', verb, 'priority', String(r.priority)];
    if (r.to) args.push('to', r.to);
    if (r.notFwmark !== undefined) args.push('not', 'fwmark', `0x${r.notFwmark.toString(16)}`);
    args.push('table', r.table);
    if (r.suppress) args.push('suppress_prefixlength', '0');
    await runChecked(this.runner, 'ip', args);
  }

  private async route(verb: 'add' | 'del', r: Route): Promise<void> {
    const args = [...fam(r.family), 'route', verb];
    if (r.type === 'unreachable') args.push('unreachable');
    args.push('default');
    if (r.dev !== undefined) args.push('dev', r.dev);
    args.push('metric', String(r.metric), 'table', String(EXIT_TABLE));
    await runChecked(this.runner, 'ip', args);
  }
}

function wantedRoutes(interfaceName: string): Route[] {
  return [
    { family: 4, type: 'unreachable', metric: FALLBACK_METRIC },
    { family: 4, type: 'unicast', dev: interfaceName, metric: 0 },
    { family: 6, type: 'unreachable', metric: FALLBACK_METRIC },
  ];
}

interface RuleJson {
  priority?: number;
  src?: string;
  dst?: string;
  dstlen?: number;
  table?: string;
  not?: null;
  fwmark?: string;
  suppress_prefixlen?: number;
  [other: string]: unknown;
}

interface RouteJson {
  type?: string;
  dst?: string;
  dev?: string;
  metric?: number;
}

const KNOWN_RULE_KEYS = new Set([
  'priority',
  'src',
  'dst',
  'dstlen',
  'table',
  'not',
  'fwmark',
  'suppress_prefixlen',
]);

/** One of our rules as `ip -j rule` shows it; null for anything else (another program's). */
function ruleOf(family: Family, j: RuleJson): Rule | null {
  const p = j.priority;
  if (p === undefined || p < FIRST || p > LAST || j.src !== 'all' || typeof j.table !== 'string') return null;
  if (Object.keys(j).some((k) => !KNOWN_RULE_KEYS.has(k))) return null;
  const rule: Rule = { family, priority: p, table: j.table };
  if (j.dst !== undefined) rule.to = `${j.dst}/${j.dstlen ?? (family === 4 ? 32 : 128)}`;
  if ('not' in j) {
    if (j.fwmark === undefined || !/^0x[0-9a-f]+$/i.test(j.fwmark)) return null;
    rule.notFwmark = Number(j.fwmark);
  } else if (j.fwmark !== undefined) return null;
  if (j.suppress_prefixlen !== undefined) {
    if (j.suppress_prefixlen !== 0) return null;
    rule.suppress = true;
  }
  const shapes = [
    rule.to !== undefined && rule.table === 'main' && !rule.notFwmark && !rule.suppress,
    rule.suppress === true && rule.to === undefined && rule.table === 'main',
    rule.notFwmark !== undefined && rule.to === undefined && rule.table === String(EXIT_TABLE),
  ];
  return shapes.some(Boolean) ? rule : null;
}

function ruleKey(r: Rule): string {
  return [r.family, r.priority, r.to ?? '', r.notFwmark ?? '', r.suppress ? 's' : '', r.table].join(' ');
}

function routeKey(r: Route): string {
  return [r.family, r.type, r.type === 'unicast' ? r.dev : '', r.metric].join(' ');
}

/** The host has no IPv6 (booted with ipv6.disable=1): `ip -6` is refused with EAFNOSUPPORT. */
function noIpv6(err: unknown): boolean {
  return /EAFNOSUPPORT|Address family not supported/i.test((err as Error).message ?? '');
}

const fam = (family: Family) => (family === 6 ? ['-6'] : []);

/** The address as `ip` prints it (IPv6 compressed, lower case), or null when it is not one. */
export function canonicalAddress(raw: string): string | null {
  const kind = isIP(raw);
  if (kind === 4) return raw;
  if (kind !== 6 || raw.includes('%')) return null;
  return new URL(`http://[${raw}]/`).hostname.slice(1, -1);
}
