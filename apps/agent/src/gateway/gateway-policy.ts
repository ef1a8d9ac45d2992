import type { GatewayPolicy } from '@trellis/firewall';
import {
  type AccessRule,
  type AccessRules,
  EXIT_ROUTE,
  ipv4CidrWithin,
  MAX_ACCESS_SPANS,
  PRIVATE_RANGES,
  type RouteAccess,
} from '@trellis/proto';

/** Where each advertised subnet route leaves this device (LanProbe); null: its interface is missing or down. */
export type LanOf = ReadonlyMap<string, string | null>;

export interface GatewayPlan {
  /** The interface the served subnet routes go out of; null: none served. */
  lanInterface: string | null;
  /** Approved subnet routes that are forwarded now. */
  served: string[];
  /** Advertised routes this device cannot forward now (AdvertiseMessage.down). */
  down: string[];
}

/**
 * Which advertised routes this device forwards. The firewall's GatewayPolicy has one LAN interface:
 * the routes of the interface carrying most of them are served; routes on any other interface (or
 * on one that is down, or through the mesh) are reported down, so clients use another gateway for
 * them rather than one that would drop their traffic.
 */
export function planGateway(
  subnetRoutes: readonly string[],
  lanOf: LanOf,
  meshInterface: string,
  exit: { advertised: boolean; wanInterface: string | null },
): GatewayPlan {
  const count = new Map<string, number>();
  for (const r of subnetRoutes) {
    const dev = lanOf.get(r);
    if (dev && dev !== meshInterface) count.set(dev, (count.get(dev) ?? 0) + 1);
  }
  const ranked = [...count].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const lanInterface = ranked[0]?.[0] ?? null;
  const served = subnetRoutes.filter((r) => lanOf.get(r) === lanInterface && lanInterface !== null);
  const down = subnetRoutes.filter((r) => !served.includes(r));
  if (exit.advertised && (exit.wanInterface === null || exit.wanInterface === meshInterface)) {
    down.push(EXIT_ROUTE);
  }
  return { lanInterface, served: [...served].sort(), down: down.sort() };
}

export interface GatewayPolicyInput {
  meshInterface: string;
  selfAddress: string;
  plan: GatewayPlan;
  /** Approved routes of this device (NetmapSelf.routes with approved). */
  approved: readonly string[];
  masquerade: boolean;
  /** The default route's interface, for an approved exit node; null: none. */
  wanInterface: string | null;
  /** Mesh address and PeerAccess.routesIn of each trusted peer. */
  peers: ReadonlyArray<{ address: string; routesIn: readonly RouteAccess[] }>;
  /** This device's on-link IPv4 subnets: exit clients may not reach them (one NIC: WAN is LAN). */
  onLink?: readonly string[];
}

/** Never reached through an exit node: private, shared (CGNAT, the overlay) and link-local ranges. */
export const EXIT_EXCLUDED: readonly string[] = PRIVATE_RANGES;

/** The forwarding policy of this device; null when it has no gateway role (nothing approved to serve). */
export function buildGatewayPolicy(i: GatewayPolicyInput): GatewayPolicy | null {
  const routes = i.plan.served.filter((r) => i.approved.includes(r));
  const exitOn =
    i.approved.includes(EXIT_ROUTE) && i.wanInterface !== null && i.wanInterface !== i.meshInterface;
  if (routes.length === 0 && !exitOn) return null;
  const pairs = new Map<string, { peer: string; destination: string; allow: AccessRules }>();
  const exitPeers: string[] = [];
  for (const p of i.peers) {
    for (const a of p.routesIn) {
      // EXIT_ROUTE is the exit route alone (autogroup:internet): it opens no served subnet.
      if (a.prefix === EXIT_ROUTE) {
        if (exitOn && !exitPeers.includes(p.address)) exitPeers.push(p.address);
        continue;
      }
      for (const r of routes) {
        const destination = ipv4CidrWithin(a.prefix, r) ? a.prefix : ipv4CidrWithin(r, a.prefix) ? r : null;
        if (destination === null) continue;
        const key = `${p.address} ${destination}`;
        const had = pairs.get(key);
        pairs.set(key, {
          peer: p.address,
          destination,
          allow: had ? mergeRules(had.allow, a.rules) : a.rules,
        });
      }
    }
  }
  return {
    meshInterface: i.meshInterface,
    selfAddress: i.selfAddress,
    ...(routes.length > 0 && i.plan.lanInterface
      ? { lan: { interfaceName: i.plan.lanInterface, routes, masquerade: i.masquerade } }
      : {}),
    virtualDevices: [],
    access: routes.length > 0 ? [...pairs.values()] : [],
    ...(exitOn
      ? {
          exitNode: {
            wanInterface: i.wanInterface!,
            peers: exitPeers,
            excluded: [...EXIT_EXCLUDED, ...(i.onLink ?? [])],
          },
        }
      : {}),
  };
}

/**
 * Two rule lists for one (peer, destination) as one of at most four rules (one per protocol, or
 * "everything"). Port spans past MAX_ACCESS_SPANS are dropped: less access, never more.
 */
export function mergeRules(a: AccessRules, b: AccessRules): AccessRules {
  const all = [...a, ...b];
  if (all.some((r) => r.proto === undefined)) return [{}];
  const out: AccessRule[] = [];
  if (all.some((r) => r.proto === 'icmp')) out.push({ proto: 'icmp' });
  for (const proto of ['tcp', 'udp'] as const) {
    const rules = all.filter((r) => r.proto === proto);
    if (rules.length === 0) continue;
    if (rules.some((r) => r.ports === undefined)) out.push({ proto });
    else out.push({ proto, ports: rules.flatMap((r) => r.ports!).slice(0, MAX_ACCESS_SPANS) });
  }
  return out;
}
