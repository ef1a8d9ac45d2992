import { type GatewayPolicy, MAX_GATEWAY_ACCESS } from '@trellis/firewall';
import {
  type AccessRule,
  type AccessRules,
  EXIT_ROUTE,
  type HostedVirtual,
  ipv4CidrWithin,
  ipv4InCidr,
  ipv4ToInt,
  MAX_ACCESS_SPANS,
  PRIVATE_RANGES,
  type RouteAccess,
} from '@trellis/proto';

/**
 * Where each advertised subnet route, and each served virtual device's `<LAN address>/32`, leaves
 * this device (LanProbe); null: its interface is missing or down.
 */
export type LanOf = ReadonlyMap<string, string | null>;

export interface GatewayPlan {
  /** The interface the served subnet routes go out of; null: none served. */
  lanInterface: string | null;
  /** Approved subnet routes that are forwarded now. */
  served: string[];
  /** Advertised routes this device cannot forward now (AdvertiseMessage.down). */
  down: string[];
  /** LAN addresses of the virtual devices forwarded now. */
  virtualServed: string[];
  /** Those it cannot forward now, and why. */
  virtualDown: Array<{ lanAddress: string; reason: string }>;
}

export const NO_PLAN: GatewayPlan = {
  lanInterface: null,
  served: [],
  down: [],
  virtualServed: [],
  virtualDown: [],
};

export const hostKey = (lanAddress: string) => `${lanAddress}/32`;

/**
 * Which advertised routes and virtual devices this device forwards. The firewall's GatewayPolicy has
 * one LAN interface: the routes and virtual devices of the interface carrying most of them are
 * served; routes on any other interface (or on one that is down, or through the mesh) are reported
 * down, so clients use another gateway for them rather than one that would drop their traffic.
 */
export function planGateway(
  subnetRoutes: readonly string[],
  lanOf: LanOf,
  meshInterface: string,
  exit: { advertised: boolean; wanInterface: string | null },
  /** LAN addresses of the virtual devices it serves (NetmapSelf.virtualDevices). */
  virtualLans: readonly string[] = [],
): GatewayPlan {
  const count = new Map<string, number>();
  for (const key of [...subnetRoutes, ...virtualLans.map(hostKey)]) {
    const dev = lanOf.get(key);
    if (dev && dev !== meshInterface) count.set(dev, (count.get(dev) ?? 0) + 1);
  }
  const ranked = [...count].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const lanInterface = ranked[0]?.[0] ?? null;
  const served = subnetRoutes.filter((r) => lanOf.get(r) === lanInterface && lanInterface !== null);
  const down = subnetRoutes.filter((r) => !served.includes(r));
  if (exit.advertised && (exit.wanInterface === null || exit.wanInterface === meshInterface)) {
    down.push(EXIT_ROUTE);
  }
  const virtualServed: string[] = [];
  const virtualDown: GatewayPlan['virtualDown'] = [];
  for (const lanAddress of [...new Set(virtualLans)].sort()) {
    const dev = lanOf.get(hostKey(lanAddress)) ?? null;
    if (dev !== null && dev === lanInterface) virtualServed.push(lanAddress);
    else virtualDown.push({ lanAddress, reason: virtualDownReason(dev, meshInterface, lanInterface) });
  }
  return { lanInterface, served: [...served].sort(), down: down.sort(), virtualServed, virtualDown };
}

function virtualDownReason(dev: string | null, mesh: string, lan: string | null): string {
  if (dev === null) return 'no route to its LAN address on an interface that is up';
  if (dev === mesh) return 'its LAN address is routed into the mesh';
  return `its LAN address is on ${dev}, not on the LAN interface in use (${lan})`;
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
  /** Virtual devices it serves (NetmapSelf.virtualDevices); those the plan does not serve are left out. */
  virtual?: readonly HostedVirtual[];
  /** The mesh address of a peer id in their access: a trusted peer's or a reachable virtual device's. */
  addressOf?: (id: string) => string | undefined;
  /** What the kernel delivers to this device itself (LanProbe.localAddresses), as IPv4 prefixes. */
  localAddresses?: readonly string[];
}

/** The policy, and the virtual devices the plan serves that it leaves out, and why. */
export interface GatewayPolicyPlan {
  policy: GatewayPolicy | null;
  virtualSkipped: VirtualSkipped[];
}

export interface VirtualSkipped {
  id: string;
  name: string;
  reason: string;
}

type AccessEntry = { peer: string; destination: string; allow: AccessRules };

/** Never reached through an exit node: private, shared (CGNAT, the overlay) and link-local ranges. */
export const EXIT_EXCLUDED: readonly string[] = PRIVATE_RANGES;

/** The forwarding policy of this device; null when it has no gateway role (nothing approved to serve). */
export function buildGatewayPolicy(i: GatewayPolicyInput): GatewayPolicy | null {
  return planGatewayPolicy(i).policy;
}

/** The forwarding policy, and which served virtual devices it leaves out (they are not "served"). */
export function planGatewayPolicy(i: GatewayPolicyInput): GatewayPolicyPlan {
  const routes = i.plan.served.filter((r) => i.approved.includes(r));
  const exitOn =
    i.approved.includes(EXIT_ROUTE) && i.wanInterface !== null && i.wanInterface !== i.meshInterface;
  const pairs = new Map<string, AccessEntry>();
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
  const { served, skipped } = servedVirtual(i, MAX_GATEWAY_ACCESS - pairs.size);
  if (routes.length === 0 && !exitOn && served.length === 0) return { policy: null, virtualSkipped: skipped };
  const policy: GatewayPolicy = {
    meshInterface: i.meshInterface,
    selfAddress: i.selfAddress,
    ...((routes.length > 0 || served.length > 0) && i.plan.lanInterface
      ? { lan: { interfaceName: i.plan.lanInterface, routes, masquerade: i.masquerade } }
      : {}),
    virtualDevices: served.map(({ v }) => ({ meshAddress: v.address, lanAddress: v.lanAddress })),
    access: [...pairs.values(), ...served.flatMap((s) => s.access)],
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
  return { policy, virtualSkipped: skipped };
}

/**
 * The virtual devices the plan serves that the firewall can take, in address order, with their
 * access entries. The firewall refuses the whole policy (subnet routes and exit node too) for one bad
 * entry, so left out are: a mesh address that is this device's, a trusted peer's or an earlier one's;
 * a LAN address that is an earlier one's or this device's own (mapping it would open this device's
 * own services to whoever may open the virtual device); and, once `budget` access entries are used,
 * the rest.
 */
function servedVirtual(
  i: GatewayPolicyInput,
  budget: number,
): { served: Array<{ v: HostedVirtual; access: AccessEntry[] }>; skipped: VirtualSkipped[] } {
  const skipped: VirtualSkipped[] = [];
  if (i.plan.lanInterface === null) return { served: [], skipped };
  const peers = new Set(i.peers.map((p) => p.address));
  const mesh = new Map<string, string>();
  const lan = new Map<string, string>();
  const kept: HostedVirtual[] = [];
  const byAddress = (a: HostedVirtual, b: HostedVirtual) =>
    (ipv4ToInt(a.address) ?? 0) - (ipv4ToInt(b.address) ?? 0) || (a.id < b.id ? -1 : 1);
  for (const v of [...(i.virtual ?? [])].sort(byAddress)) {
    if (!i.plan.virtualServed.includes(v.lanAddress)) continue; // reported by the plan
    const skip = (reason: string) => skipped.push({ id: v.id, name: v.name, reason });
    if (v.address === i.selfAddress) skip(`its mesh address ${v.address} is this gateway's own`);
    else if (peers.has(v.address)) skip(`its mesh address ${v.address} is also a peer's`);
    else if (mesh.has(v.address)) skip(`its mesh address ${v.address} is also ${mesh.get(v.address)}'s`);
    else if ((i.localAddresses ?? []).some((c) => ipv4InCidr(v.lanAddress, c))) {
      skip(`its LAN address ${v.lanAddress} is this gateway's own (it would expose the gateway's services)`);
    } else if (lan.has(v.lanAddress)) {
      skip(`its LAN address ${v.lanAddress} is also ${lan.get(v.lanAddress)}'s`);
    } else {
      mesh.set(v.address, v.name);
      lan.set(v.lanAddress, v.name);
      kept.push(v);
    }
  }
  // Its own virtual devices talk to each other on the LAN, never through this device.
  const local = new Set([i.selfAddress, ...kept.map((v) => v.address)]);
  const served: Array<{ v: HostedVirtual; access: AccessEntry[] }> = [];
  let left = budget;
  let full = false;
  for (const v of kept) {
    const access = virtualAccess(i, v, local);
    // In address order: once one does not fit, a later, smaller one does not jump the queue.
    full ||= access.length > left;
    if (full) {
      skipped.push({ id: v.id, name: v.name, reason: 'too many peers for the forwarding rules' });
      continue;
    }
    left -= access.length;
    served.push({ v, access });
  }
  return { served, skipped };
}

/** Who may open what on a served virtual device: its `in` rules to its mesh address, per peer. */
function virtualAccess(i: GatewayPolicyInput, v: HostedVirtual, local: ReadonlySet<string>): AccessEntry[] {
  const pairs = new Map<string, AccessEntry>();
  for (const a of v.access) {
    for (const id of a.peers) {
      const peer = i.addressOf?.(id);
      if (peer === undefined || local.has(peer)) continue;
      // The firewall takes a virtual device's destination as its bare mesh address.
      const had = pairs.get(peer);
      pairs.set(peer, { peer, destination: v.address, allow: had ? mergeRules(had.allow, a.in) : a.in });
    }
  }
  return [...pairs.values()];
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
