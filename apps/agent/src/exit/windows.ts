import type { Logger } from 'pino';
import {
  asArray,
  checkAlias,
  psString,
  readPowerShellJson,
  runPowerShellLines,
} from '../platform/powershell';
import { addRoute, type NetRoute, ROUTE_OBJECT, removeRoute } from '../platform/windows';
import type { CommandRunner } from '../util/command-runner';
import type { ExitRouting, ExitRoutingPlan } from './exit-routing';
import { canonicalAddress } from './linux';
import { RouteRecord, routeKey } from './windows-route-record';

/**
 * The RouteMetric of every exit route (one above the subnet routes' 116). It narrows the reads;
 * what is ours is what the route record says (see RouteRecord), never the metric alone.
 */
export const EXIT_ROUTE_METRIC = 117;
/** The two halves of each family: more specific than any default route, so they win without replacing it. */
export const TUNNEL_PREFIXES = ['0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1'] as const;
const HOST_LEN = { 4: 32, 6: 128 } as const;

type Gateway = NetRoute & { family: 4 | 6 };

interface ExitState {
  tunnel: number | null;
  tunnel6: boolean;
  routes: NetRoute[] | NetRoute | null;
  gateways: Gateway[] | Gateway | null;
}

/**
 * Windows exit routing with plain routes: the four half-default routes into the WireGuard adapter,
 * and a host route for each bypass address through the physical default gateway.
 *
 * WireGuard's own UDP needs no mark and no bypass: wireguard-nt picks each peer's source and
 * interface from the routing table with its own adapter's routes skipped, and sends with
 * IP_PKTINFO (driver/socket.c, SocketResolvePeerEndpoint: "if (Table->Table[i].InterfaceLuid.Value
 * == Peer->Device->InterfaceLuid.Value) continue;"; wireguard-windows docs/netquirk.md, "Routing").
 * The bypass routes are for the agent's other traffic (broker, relays, reflectors).
 *
 * LAN routes are more specific than /1 and keep winning, so allowLan needs nothing, and without it
 * the attached LAN still stays reachable (said once in the log). IPv6 goes into the adapter too,
 * where no peer takes it: refused, not sent by the ISP. The routes leave with the adapter: a
 * killed agent whose adapter Windows removes falls back to the ISP (only a WFP filter could stop
 * that; the access-control filters do not).
 *
 * Every route added is recorded first (`routesFile`, in the state directory), and only recorded
 * routes still in the table are removed, a crashed run's included: another program's route with
 * the same metric and shape is never touched.
 */
export class WindowsExitRouting implements ExitRouting {
  private warnedLan = false;
  private warnedNoIpv6 = false;
  private readonly record: RouteRecord;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    routesFile: string,
  ) {
    this.record = new RouteRecord(routesFile, log);
  }

  async apply(plan: ExitRoutingPlan): Promise<void> {
    const state = await this.read(plan.interfaceName);
    const live = asArray(state.routes);
    const recorded = new Set((await this.record.read()).map(routeKey));
    // A half-default on our adapter is ours even if the record was lost.
    const ours = live.filter(
      (h) => recorded.has(routeKey(h)) || (isTunnelPrefix(h.prefix) && h.ifIndex === state.tunnel),
    );
    const want: NetRoute[] = [];
    if (state.tunnel !== null) {
      for (const prefix of TUNNEL_PREFIXES) {
        const v6 = prefix.includes(':');
        if (v6 && !state.tunnel6) continue;
        want.push({
          prefix,
          nextHop: v6 ? '::' : '0.0.0.0',
          metric: EXIT_ROUTE_METRIC,
          ifIndex: state.tunnel,
        });
      }
      if (!state.tunnel6 && !this.warnedNoIpv6) {
        this.warnedNoIpv6 = true;
        this.log.warn(
          { interface: plan.interfaceName },
          'the adapter has no IPv6: IPv6 is not kept from the ISP',
        );
      }
    }
    const gateways = asArray(state.gateways).filter((g) => g.ifIndex !== state.tunnel);
    for (const raw of plan.bypass) {
      const address = canonicalAddress(raw);
      if (address === null) {
        this.log.warn({ address: raw }, 'not an IP address: no direct path kept for it');
        continue;
      }
      const family = address.includes(':') ? 6 : 4;
      // Lowest metric first (the read sorts them): the path Windows would take without us.
      const gw = gateways.find((g) => g.family === family);
      if (!gw) continue; // no default route in that family: nothing to bypass through
      const prefix = `${address}/${HOST_LEN[family]}`;
      if (want.some((w) => w.prefix === prefix)) continue;
      want.push({ prefix, nextHop: gw.nextHop, metric: EXIT_ROUTE_METRIC, ifIndex: gw.ifIndex });
    }
    if (!plan.allowLan && !this.warnedLan) {
      this.warnedLan = true;
      this.log.warn('on Windows the attached LAN stays reachable while an exit node is used');
    }
    const isIn = (list: NetRoute[]) => (r: NetRoute) => list.some((x) => routeKey(x) === routeKey(r));
    // The same route of another program already there carries the traffic alike: not added, not ours.
    const add = want.filter((w) => !isIn(live)(w));
    const drop = ours.filter((h) => !isIn(want)(h));
    const kept = want.filter((w) => isIn(ours)(w) || isIn(add)(w));
    // Recorded before they exist: a crash in between leaves a record, never an unrecorded route.
    if (add.length > 0) await this.record.write([...ours, ...add]);
    // The tunnel routes first: a failure later leaves traffic in the tunnel, not at the ISP.
    await runPowerShellLines(this.runner, [
      ...sortTunnelFirst(add).map(addExitRoute),
      ...drop.map((h) => removeRoute(h, true)),
    ]);
    const keptKeys = new Set(kept.map(routeKey));
    const changed = keptKeys.size !== recorded.size || [...keptKeys].some((k) => !recorded.has(k));
    if (changed) await this.record.write(kept);
    if (state.tunnel === null) {
      throw new Error(
        `interface ${plan.interfaceName} is missing: internet traffic is not routed into the mesh`,
      );
    }
  }

  /** The recorded routes still in the table; the record is emptied once they are gone. */
  async remove(): Promise<void> {
    const recorded = await this.record.read();
    if (recorded.length === 0) return;
    const keys = new Set(recorded.map(routeKey));
    const ours = asArray((await this.read(null)).routes).filter((r) => keys.has(routeKey(r)));
    // The tunnel routes first: traffic goes back to the default route before the bypasses go.
    await runPowerShellLines(
      this.runner,
      sortTunnelFirst(ours).map((r) => removeRoute(r, true)),
    );
    await this.record.write([]);
  }

  /** Our routes, the adapter's index (null: missing) and the default routes, lowest metric first. */
  private async read(interfaceName: string | null): Promise<ExitState> {
    const alias = interfaceName === null ? null : psString(checkAlias(interfaceName));
    const script = [
      alias
        ? `$tun = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv4 -ErrorAction SilentlyContinue\n$tun6 = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv6 -ErrorAction SilentlyContinue`
        : '$tun = $null\n$tun6 = $null',
      `$r = @(Get-NetRoute -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { $_.RouteMetric -eq ${EXIT_ROUTE_METRIC} } | ForEach-Object { ${ROUTE_OBJECT} })`,
      // The active store only: a persistent copy of a default route is not one Windows routes by.
      "$g = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0','::/0' -PolicyStore ActiveStore -ErrorAction SilentlyContinue | ForEach-Object { $m = (Get-NetIPInterface -InterfaceIndex $_.ifIndex -AddressFamily $_.AddressFamily -ErrorAction SilentlyContinue).InterfaceMetric; [pscustomobject]@{ prefix = $_.DestinationPrefix; nextHop = $_.NextHop; metric = [int]$_.RouteMetric + [int]$m; ifIndex = [int]$_.ifIndex; family = $(if ($_.AddressFamily -eq 'IPv6') { 6 } else { 4 }) } } | Sort-Object metric)",
      'ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ tunnel = $(if ($tun) { [int]$tun.ifIndex } else { $null }); tunnel6 = [bool]$tun6; routes = $r; gateways = $g })',
    ].join('\n');
    const state = await readPowerShellJson<ExitState>(this.runner, script);
    return {
      tunnel: state?.tunnel ?? null,
      tunnel6: state?.tunnel6 ?? false,
      routes: asArray(state?.routes),
      gateways: state?.gateways ?? [],
    };
  }
}

function isTunnelPrefix(prefix: string): boolean {
  return (TUNNEL_PREFIXES as readonly string[]).includes(prefix);
}

function sortTunnelFirst(routes: NetRoute[]): NetRoute[] {
  const tunnel = (r: NetRoute) => (isTunnelPrefix(r.prefix) ? 0 : 1);
  return [...routes].sort((a, b) => tunnel(a) - tunnel(b));
}

/** A tunnel half into the adapter, or a bypass host route through a gateway. */
function addExitRoute(r: NetRoute): string {
  if (isTunnelPrefix(r.prefix)) return addRoute(r.ifIndex, r.prefix, r.metric);
  return `New-NetRoute -InterfaceIndex ${r.ifIndex} -DestinationPrefix ${psString(r.prefix)} -NextHop ${psString(r.nextHop)} -RouteMetric ${r.metric} -PolicyStore ActiveStore | Out-Null`;
}
