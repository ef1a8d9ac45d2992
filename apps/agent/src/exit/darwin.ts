import { isIP } from 'node:net';
import { ipv4InCidr, OVERLAY_PREFIX } from '@trellis/proto';
import type { Logger } from 'pino';
import type { NetworkChangeEvents } from '../platform/candidates';
import type { UtunName } from '../platform/darwin-interface';
import {
  canonicalIpv6,
  type DarwinRoute,
  destinationArgs,
  EXIT_QUADRANTS,
  EXIT_REJECTS,
  type Family,
  isOurs,
  OUR_ROUTE_MODIFIER,
  readRoutes,
  routeGet,
} from '../platform/darwin-routes';
import { type CommandRunner, runChecked } from '../util/command-runner';
import type { ExitRouting, ExitRoutingPlan } from './exit-routing';

/** Where a host keeps its direct path: the physical default route's gateway, or its interface. */
type Via = { gateway: string } | { interface: string };

interface Wanted {
  family: Family;
  destination: string;
  kind: 'reject' | 'tunnel' | 'host';
  via?: Via;
}

/**
 * macOS has no fwmark and no policy routing, so exit routing is made of plain routes, all with our
 * flag (RTF_PROTO2), in the order that keeps it closed:
 * - `-reject` for each half (0/1, 128/1; ::/1, 8000::/1): under everything else, and it outlives
 *   the utun, so with WireGuard gone nothing falls through to the default route;
 * - the four /2 quarters into the utun (IPv6 is refused, never carried, as on Linux);
 * - a host route via the physical default gateway, taken at apply, for each bypass address and
 *   each WireGuard peer endpoint: WireGuard's own UDP has no mark here, so without them it would
 *   be sent into itself (wg-quick's `set_endpoint_direct_route`). An address whose route is already
 *   more specific than a quarter and not the utun's (the LAN) needs none.
 * Routes directly attached (the LAN) are more specific than the quarters and always win: allowLan
 * false cannot be enforced with routes alone.
 */
export class DarwinExitRouting implements ExitRouting {
  private plan: ExitRoutingPlan | null = null;
  private queue: Promise<void> = Promise.resolve();
  /** A refresh waiting in the queue, not started yet: later ones join it. */
  private pendingRefresh: Promise<void> | null = null;
  private stopEvents: (() => void) | null = null;

  constructor(
    private readonly utun: UtunName,
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    /** The peers' current endpoint addresses (`ip:port` as WireGuard reports them). */
    private readonly endpoints: () => Promise<string[]>,
    /** Route and address changes (a new default gateway): followed while a plan is in place. */
    private readonly events?: NetworkChangeEvents,
  ) {}

  apply(plan: ExitRoutingPlan): Promise<void> {
    this.plan = plan;
    if (this.events && !this.stopEvents) {
      this.stopEvents = this.events(() => {
        this.refresh().catch((err: Error) =>
          this.log.error({ err: err.message }, 'exit routing refresh failed'),
        );
      });
    }
    return this.serial(() => this.sync(plan));
  }

  remove(): Promise<void> {
    this.plan = null;
    this.stopEvents?.();
    this.stopEvents = null;
    return this.serial(async () => {
      for (const family of [4, 6] as const) {
        // The quarters first: traffic meets the rejects (closed) before the bypasses go.
        const order = { tunnel: 0, reject: 1, host: 2 } as const;
        const have = (await this.ours(family)).sort((a, b) => order[a.kind] - order[b.kind]);
        for (const r of have) await this.del(r);
      }
    });
  }

  /** Re-applies the last plan: a peer endpoint or the default gateway may have changed. */
  refresh(): Promise<void> {
    // Our own route changes come back as events: one refresh waiting is enough for all of them.
    if (this.plan === null) return Promise.resolve();
    if (this.pendingRefresh) return this.pendingRefresh;
    const run = this.serial(async () => {
      this.pendingRefresh = null;
      if (this.plan) await this.sync(this.plan);
    });
    this.pendingRefresh = run;
    return run;
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const run = this.queue.then(job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sync(plan: ExitRoutingPlan): Promise<void> {
    const utun = this.utun.tryResolve(plan.interfaceName);
    const hosts = await this.hostAddresses(plan);
    let noTunnel: Error | null = null;
    for (const family of [4, 6] as const) {
      const routes = await readRoutes(this.runner, family);
      const def = await routeGet(this.runner, 'default', family);
      const via: Via | null = def?.gateway
        ? { gateway: def.gateway }
        : def?.interface && !def.interface.startsWith('utun')
          ? { interface: def.interface }
          : null;
      const want: Wanted[] = EXIT_REJECTS[family].map((d) => ({ family, destination: d, kind: 'reject' }));
      if (family === 4 && utun)
        for (const d of EXIT_QUADRANTS) want.push({ family, destination: d, kind: 'tunnel' });
      if (family === 4 && !utun)
        noTunnel = new Error(`${plan.interfaceName} has no utun: internet traffic is refused`);
      for (const a of hosts.filter((h) => familyOf(h) === family)) {
        const destination = `${a}/${family === 4 ? 32 : 128}`;
        if (family === 4 && directOutsideTunnel(a, routes, utun)) continue;
        // Someone else's route for exactly this host (a static one): it keeps that path, not ours.
        if (routes.some((r) => r.destination === destination && !isOurs(r))) continue;
        if (!via) {
          this.log.warn({ address: a }, 'no default route: no direct path kept for it');
          continue;
        }
        want.push({ family, destination, kind: 'host', via });
      }
      const have = routes.map((r) => ({ r, w: exitShape(r) })).filter((x) => x.w !== null);
      // Adds in the order of `want` (rejects, quarters, hosts); a changed host route goes first.
      for (const w of want) {
        const same = have.find((h) => h.w!.destination === w.destination);
        if (same && sameRoute(same.r, w, utun)) continue;
        if (same) await this.del(same.w!);
        await this.add(w, utun);
      }
      for (const h of have) if (!want.some((w) => w.destination === h.w!.destination)) await this.del(h.w!);
    }
    if (noTunnel) throw noTunnel;
  }

  /** Bypass addresses and the peers' endpoints, without loopback (a local relay proxy) or the overlay. */
  private async hostAddresses(plan: ExitRoutingPlan): Promise<string[]> {
    const endpoints = await this.endpoints().catch(() => []);
    const out = new Set<string>();
    for (const raw of [...plan.bypass, ...endpoints.map(hostOf)]) {
      const kind = isIP(raw);
      if (kind === 0) {
        this.log.warn({ address: raw }, 'not an IP address: no direct path kept for it');
        continue;
      }
      const a = kind === 6 ? canonicalIpv6(raw) : raw;
      if (kind === 4 && (a.startsWith('127.') || ipv4InCidr(a, OVERLAY_PREFIX))) continue;
      if (kind === 6 && (a === '::1' || a.startsWith('fe80:'))) continue;
      out.add(a);
    }
    return [...out].sort();
  }

  private async ours(family: Family): Promise<Wanted[]> {
    const routes = await readRoutes(this.runner, family);
    return routes.map(exitShape).filter((w): w is Wanted => w !== null);
  }

  private async add(w: Wanted, utun: string | null): Promise<void> {
    const dest = destinationArgs(w.destination, w.family);
    const loopback = w.family === 4 ? '127.0.0.1' : '::1';
    const target =
      w.kind === 'reject'
        ? [loopback, '-reject']
        : w.kind === 'tunnel'
          ? ['-interface', utun!]
          : w.via && 'gateway' in w.via
            ? [w.via.gateway]
            : ['-interface', (w.via as { interface: string }).interface];
    await runChecked(this.runner, 'route', ['-n', 'add', ...dest, ...target, OUR_ROUTE_MODIFIER]);
  }

  private async del(w: Wanted): Promise<void> {
    await this.runner.run('route', ['-n', 'delete', ...destinationArgs(w.destination, w.family)]);
  }
}

/** One of our exit routes as netstat shows it; null for anything else (a subnet route, another program's). */
function exitShape(r: DarwinRoute): Wanted | null {
  if (!isOurs(r)) return null;
  const { family, destination } = r;
  if (r.flags.includes('R') && EXIT_REJECTS[family].includes(destination))
    return { family, destination, kind: 'reject' };
  if (family === 4 && EXIT_QUADRANTS.includes(destination) && /^utun\d+$/.test(r.netif)) {
    return { family, destination, kind: 'tunnel' };
  }
  if (r.flags.includes('H') && !/^utun\d+$/.test(r.netif) && !r.flags.includes('R')) {
    const via: Via = r.flags.includes('G') ? { gateway: r.gateway } : { interface: r.netif };
    return { family, destination, kind: 'host', via };
  }
  return null;
}

function sameRoute(r: DarwinRoute, w: Wanted, utun: string | null): boolean {
  if (w.kind === 'reject') return r.flags.includes('R');
  if (w.kind === 'tunnel') return r.netif === utun;
  if (w.via && 'gateway' in w.via)
    return r.flags.includes('G') && r.gateway.toLowerCase() === w.via.gateway.toLowerCase();
  return !r.flags.includes('G') && r.netif === (w.via as { interface: string }).interface;
}

/**
 * Whether a route more specific than the quarters, not through the utun and not one of ours,
 * already takes this address (a LAN peer): a host route via the gateway would only detour it.
 */
function directOutsideTunnel(address: string, routes: readonly DarwinRoute[], utun: string | null): boolean {
  let best: DarwinRoute | null = null;
  let bestLen = 2;
  for (const r of routes) {
    const len = Number(r.destination.split('/')[1]);
    if (len <= bestLen || isOurs(r) || !ipv4InCidr(address, r.destination)) continue;
    best = r;
    bestLen = len;
  }
  return best !== null && best.netif !== utun && !/[RB]/.test(best.flags);
}

function hostOf(endpoint: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(endpoint) ?? /^([^:]+):\d+$/.exec(endpoint);
  return m ? m[1]! : endpoint;
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}
