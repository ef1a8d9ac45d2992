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

/**
 * The RouteMetric of every exit route (one above the subnet routes' 116): what is ours, a crashed
 * run's included. Another program's route is never touched, whatever its prefix.
 */
export const EXIT_ROUTE_METRIC = 117;
/** The two halves of each family: more specific than any default route, so they win without replacing it. */
export const TUNNEL_PREFIXES = ['0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1'] as const;
const HOST_LEN = { 4: 32, 6: 128 } as const;

interface ExitState {
  tunnel: number | null;
  tunnel6: boolean;
  routes: NetRoute[] | NetRoute | null;
  gateways: Array<NetRoute & { family: 4 | 6 }> | (NetRoute & { family: 4 | 6 }) | null;
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
 */
export class WindowsExitRouting implements ExitRouting {
  private warnedLan = false;
  private warnedNoIpv6 = false;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

  async apply(plan: ExitRoutingPlan): Promise<void> {
    const state = await this.read(plan.interfaceName);
    const have = asArray(state.routes);
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
    const lines: string[] = [];
    // The tunnel routes first: a failure later leaves traffic in the tunnel, not at the ISP.
    for (const w of sortTunnelFirst(want)) {
      if (!have.some((h) => routeKey(h) === routeKey(w))) lines.push(addExitRoute(w));
    }
    for (const h of have)
      if (!want.some((w) => routeKey(w) === routeKey(h))) lines.push(removeRoute(h, true));
    await runPowerShellLines(this.runner, lines);
    if (state.tunnel === null) {
      throw new Error(
        `interface ${plan.interfaceName} is missing: internet traffic is not routed into the mesh`,
      );
    }
  }

  async remove(): Promise<void> {
    const ours = asArray((await this.read(null)).routes);
    // The tunnel routes first: traffic goes back to the default route before the bypasses go.
    await runPowerShellLines(
      this.runner,
      sortTunnelFirst(ours).map((r) => removeRoute(r, true)),
    );
  }

  /** Our routes, the adapter's index (null: missing) and the default routes, lowest metric first. */
  private async read(interfaceName: string | null): Promise<ExitState> {
    const alias = interfaceName === null ? null : psString(checkAlias(interfaceName));
    const script = [
      alias
        ? `$tun = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv4 -ErrorAction SilentlyContinue\n$tun6 = Get-NetIPInterface -InterfaceAlias ${alias} -AddressFamily IPv6 -ErrorAction SilentlyContinue`
        : '$tun = $null\n$tun6 = $null',
      `$r = @(Get-NetRoute -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { $_.RouteMetric -eq ${EXIT_ROUTE_METRIC} } | ForEach-Object { ${ROUTE_OBJECT} })`,
      "$g = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0','::/0' -ErrorAction SilentlyContinue | ForEach-Object { $m = (Get-NetIPInterface -InterfaceIndex $_.ifIndex -AddressFamily $_.AddressFamily -ErrorAction SilentlyContinue).InterfaceMetric; [pscustomobject]@{ prefix = $_.DestinationPrefix; nextHop = $_.NextHop; metric = [int]$_.RouteMetric + [int]$m; ifIndex = [int]$_.ifIndex; family = $(if ($_.AddressFamily -eq 'IPv6') { 6 } else { 4 }) } } | Sort-Object metric)",
      'ConvertTo-Json -Compress -Depth 4 -InputObject ([pscustomobject]@{ tunnel = $(if ($tun) { [int]$tun.ifIndex } else { $null }); tunnel6 = [bool]$tun6; routes = $r; gateways = $g })',
    ].join('\n');
    const state = await readPowerShellJson<ExitState>(this.runner, script);
    const routes = asArray(state?.routes).filter(isExitShape);
    return {
      tunnel: state?.tunnel ?? null,
      tunnel6: state?.tunnel6 ?? false,
      routes,
      gateways: state?.gateways ?? [],
    };
  }
}

/** Ours: our metric, and a half-default or a host route (the shapes apply adds). */
function isExitShape(r: NetRoute): boolean {
  return (TUNNEL_PREFIXES as readonly string[]).includes(r.prefix) || /\/(32|128)$/.test(r.prefix);
}

function sortTunnelFirst(routes: NetRoute[]): NetRoute[] {
  const tunnel = (r: NetRoute) => ((TUNNEL_PREFIXES as readonly string[]).includes(r.prefix) ? 0 : 1);
  return [...routes].sort((a, b) => tunnel(a) - tunnel(b));
}

function routeKey(r: NetRoute): string {
  return `${r.prefix.toLowerCase()} ${r.nextHop.toLowerCase()} ${r.ifIndex}`;
}

/** A tunnel half into the adapter, or a bypass host route through a gateway. */
function addExitRoute(r: NetRoute): string {
  if ((TUNNEL_PREFIXES as readonly string[]).includes(r.prefix))
    return addRoute(r.ifIndex, r.prefix, r.metric);
  return `New-NetRoute -InterfaceIndex ${r.ifIndex} -DestinationPrefix ${psString(r.prefix)} -NextHop ${psString(r.nextHop)} -RouteMetric ${r.metric} -PolicyStore ActiveStore | Out-Null`;
}
