import {
  EXIT_ROUTE,
  type GatewayStatus,
  ipv4CidrWithin,
  type NetmapPeer,
  type RouteAccess,
} from '@trellis/proto';

/**
 * Which gateway carries each of the other devices' prefixes (issue 14). Sans-IO: the caller
 * brings the netmap's view, the settings and each gateway's liveness, and applies the result.
 */

/** What the selector reads of a trusted netmap peer. */
export type SelectorPeer = Pick<NetmapPeer, 'id' | 'name' | 'online' | 'routes'>;

export interface RouteSelectionInput {
  peers: readonly SelectorPeer[];
  /** By peer id: what this device may reach through that peer's routes (PeerAccess.routesOut). */
  routesOut: ReadonlyMap<string, readonly RouteAccess[]>;
  acceptRoutes: boolean;
  /** The exit node the user chose, resolved to a peer id (resolveExitNode); null: none. */
  exitNode: string | null;
  /** Subnets this device is attached to: their prefixes are reached directly, never via the mesh. */
  localSubnets: readonly string[];
  /** Subnet routes this device advertises itself: it reaches them without the mesh. */
  ownRoutes?: readonly string[];
  /** Whether a gateway's tunnel is alive now (GatewayLiveness); the broker's `online` is checked here. */
  alive(peerId: string): boolean;
  /**
   * The gateway each prefix went to last time, and whether a peer's tunnel answered lately: a
   * live current gateway is left for a more preferred one only once that one has answered.
   */
  current?: ReadonlyMap<string, string>;
  proven?(peerId: string): boolean;
}

export interface RouteSelection {
  /** Extra allowed IPs by peer id: the prefixes it carries for us (EXIT_ROUTE for the exit node). */
  allowedIps: Map<string, string[]>;
  /** Subnet prefixes routed into the mesh interface: every prefix with a usable gateway. */
  kernelRoutes: string[];
  rows: GatewayStatus['routes'];
  /** The peer the exit route goes to now; null: nobody (fail closed). */
  exitGateway: string | null;
  /** The chosen exit node when it offers the exit route and the policy lets us use it. */
  exitCandidate: string | null;
  /** Peers serving a prefix we use or may use: fast keepalive and liveness sampling. */
  watched: Set<string>;
  /** Whether liveness must be sampled: a prefix with 2+ usable gateways, or an exit node chosen. */
  sample: boolean;
}

export const overlaps = (a: string, b: string) => ipv4CidrWithin(a, b) || ipv4CidrWithin(b, a);

/** The policy lets us reach some of `prefix` through the peer (its routesOut has an overlapping prefix). */
function permitted(access: readonly RouteAccess[] | undefined, prefix: string): boolean {
  if (!access) return false;
  if (prefix === EXIT_ROUTE) return access.some((a) => a.prefix === EXIT_ROUTE);
  return access.some((a) => overlaps(a.prefix, prefix));
}

interface Offer {
  peer: SelectorPeer;
  since: number;
}

/** Most preferred first: served longest, then lowest id (every client picks the same primary). */
const byPreference = (a: Offer, b: Offer) =>
  a.since - b.since || (a.peer.id < b.peer.id ? -1 : a.peer.id > b.peer.id ? 1 : 0);

export function selectRoutes(input: RouteSelectionInput): RouteSelection {
  const offers = new Map<string, Offer[]>();
  for (const peer of input.peers) {
    for (const r of peer.routes ?? []) {
      if (r.prefix === EXIT_ROUTE) continue;
      const list = offers.get(r.prefix) ?? [];
      list.push({ peer, since: r.since });
      offers.set(r.prefix, list);
    }
  }
  const isAlive = (p: SelectorPeer) => p.online && input.alive(p.id);
  const out: RouteSelection = {
    allowedIps: new Map(),
    kernelRoutes: [],
    rows: [],
    exitGateway: null,
    exitCandidate: null,
    watched: new Set(),
    sample: false,
  };
  const give = (peerId: string, prefix: string) => {
    const list = out.allowedIps.get(peerId) ?? [];
    list.push(prefix);
    out.allowedIps.set(peerId, list);
  };
  for (const prefix of [...offers.keys()].sort()) {
    const all = offers.get(prefix)!.sort(byPreference);
    const gateways = all.map((o) => ({ name: o.peer.name, alive: isAlive(o.peer) }));
    const usable = all.filter((o) => permitted(input.routesOut.get(o.peer.id), prefix));
    const local = input.localSubnets.find((s) => overlaps(s, prefix));
    const own = input.ownRoutes?.find((s) => overlaps(s, prefix));
    let reason: string | undefined;
    if (!input.acceptRoutes) reason = 'not accepted (--accept-routes false)';
    else if (local) reason = `overlaps the local subnet ${local}`;
    else if (own) reason = `overlaps ${own}, which this device advertises`;
    else if (usable.length === 0) reason = 'not allowed by the access policy';
    if (reason) {
      out.rows.push({ prefix, via: null, gateways, installed: false, reason });
      continue;
    }
    for (const o of usable) out.watched.add(o.peer.id);
    if (usable.length > 1) out.sample = true;
    out.kernelRoutes.push(prefix);
    let chosen = usable.find((o) => isAlive(o.peer));
    const held = usable.find((o) => o.peer.id === input.current?.get(prefix) && isAlive(o.peer));
    if (chosen && held && chosen !== held && !(input.proven?.(chosen.peer.id) ?? true)) chosen = held;
    if (chosen) give(chosen.peer.id, prefix);
    out.rows.push({
      prefix,
      via: chosen?.peer.name ?? null,
      gateways,
      installed: true,
      ...(chosen ? {} : { reason: 'no live gateway' }),
    });
  }
  const exit = input.exitNode ? input.peers.find((p) => p.id === input.exitNode) : undefined;
  if (exit && exitNodeProblem(exit, input.routesOut) === null) {
    out.exitCandidate = exit.id;
    out.watched.add(exit.id);
    out.sample = true;
    if (isAlive(exit)) {
      out.exitGateway = exit.id;
      give(exit.id, EXIT_ROUTE);
    }
  }
  return out;
}

export const NOT_EXIT_NODE = 'it is not an approved exit node';

/** Why `wanted` (a name, DNS name or mesh address) is not an exit node we may use; null when it is. */
export function exitNodeProblem(
  peer: SelectorPeer | undefined,
  routesOut: ReadonlyMap<string, readonly RouteAccess[]>,
): string | null {
  if (!peer) return 'no such peer in the netmap';
  if (!peer.routes?.some((r) => r.prefix === EXIT_ROUTE)) return NOT_EXIT_NODE;
  if (!permitted(routesOut.get(peer.id), EXIT_ROUTE)) return 'the access policy does not allow it';
  return null;
}

/** The peer `wanted` names: its id, name, DNS name (with or without the final dot) or mesh address. */
export function findPeerFor<P extends { id: string; name: string; dnsName?: string; address?: string }>(
  wanted: string,
  peers: readonly P[],
): P | undefined {
  const w = wanted.toLowerCase().replace(/\.$/, '');
  return peers.find(
    (p) =>
      p.id === wanted ||
      p.address === wanted ||
      p.name.toLowerCase() === w ||
      p.dnsName?.toLowerCase().replace(/\.$/, '') === w,
  );
}
