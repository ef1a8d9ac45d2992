import {
  EXIT_ROUTE,
  type GatewayStatus,
  ipv4CidrWithin,
  ipv4InCidr,
  type NetmapPeer,
  parseIpv4Cidr,
  type RouteAccess,
  SPECIAL_RANGES,
} from '@trellis/proto';
import { keyChangeProof } from '../trust/key-change-proof';

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
  /**
   * Hosts a subnet route must never cover, or their packets would loop into the mesh: brokers,
   * relays, reflectors, peers' endpoints, the default gateway, DNS upstreams. Checked on every apply.
   */
  keepOut?: readonly KeepOut[];
}

/** A host no route may cover; `what` names it in the status row ("the broker"). */
export interface KeepOut {
  address: string;
  what: string;
}

/** Shortest subnet route accepted: anything wider is an exit node's job. */
export const MIN_ROUTE_BITS = 8;

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

/** A selection that routes nothing (before the first netmap, after the session ended). */
export function emptySelection(): RouteSelection {
  return {
    allowedIps: new Map(),
    kernelRoutes: [],
    rows: [],
    exitGateway: null,
    exitCandidate: null,
    watched: new Set(),
    sample: false,
  };
}

export const overlaps = (a: string, b: string) => ipv4CidrWithin(a, b) || ipv4CidrWithin(b, a);
/** The overlap of two overlapping prefixes: the more specific one. */
const narrower = (a: string, b: string) => (ipv4CidrWithin(a, b) ? a : b);

/** Why `prefix` is never routed into the mesh, whatever the netmap says; null when it may be. */
function unsafe(prefix: string, keepOut: readonly KeepOut[]): string | null {
  const bits = parseIpv4Cidr(prefix)?.bits ?? 0;
  if (bits < MIN_ROUTE_BITS) return `wider than /${MIN_ROUTE_BITS}`;
  const special = SPECIAL_RANGES.find((r) => overlaps(r, prefix));
  if (special) return `overlaps the reserved range ${special}`;
  const host = keepOut.find((k) => ipv4InCidr(k.address, prefix));
  return host ? `covers ${host.what} ${host.address}` : null;
}

/**
 * Whether a routesOut entry opens some of a route: EXIT_ROUTE there means the exit route alone
 * (autogroup:internet), never every subnet; a subnet entry never opens the exit route.
 */
export const opens = (a: RouteAccess, route: string) =>
  a.prefix === EXIT_ROUTE || route === EXIT_ROUTE ? a.prefix === route : overlaps(a.prefix, route);

/** The policy lets us reach some of `prefix` through the peer (its routesOut opens some of it). */
function permitted(access: readonly RouteAccess[] | undefined, prefix: string): boolean {
  return access?.some((a) => opens(a, prefix)) ?? false;
}

interface Offer {
  peer: SelectorPeer;
  since: number;
}

/** Most preferred first: served longest, then lowest id (every client picks the same primary). */
const byPreference = (a: Offer, b: Offer) =>
  a.since - b.since || (a.peer.id < b.peer.id ? -1 : a.peer.id > b.peer.id ? 1 : 0);

export function selectRoutes(input: RouteSelectionInput): RouteSelection {
  // Each gateway offers the part of its prefix the policy lets us reach: the more specific of
  // each overlapping (advertised, routesOut) pair. Prefixes with no such part are only reported.
  const offers = new Map<string, Offer[]>();
  const denied = new Map<string, SelectorPeer[]>();
  for (const peer of input.peers) {
    const access = input.routesOut.get(peer.id) ?? [];
    for (const r of peer.routes ?? []) {
      if (r.prefix === EXIT_ROUTE) continue;
      const parts = new Set(
        access.filter((a) => opens(a, r.prefix)).map((a) => narrower(a.prefix, r.prefix)),
      );
      if (parts.size === 0) denied.set(r.prefix, [...(denied.get(r.prefix) ?? []), peer]);
      for (const part of parts) {
        const list = offers.get(part) ?? [];
        if (!list.some((o) => o.peer.id === peer.id)) list.push({ peer, since: r.since });
        offers.set(part, list);
      }
    }
  }
  const isAlive = (p: SelectorPeer) => p.online && input.alive(p.id);
  const out = emptySelection();
  const give = (peerId: string, prefix: string) => {
    const list = out.allowedIps.get(peerId) ?? [];
    list.push(prefix);
    out.allowedIps.set(peerId, list);
  };
  for (const [prefix, peers] of denied) {
    if (offers.has(prefix)) continue;
    const gateways = peers.map((p) => ({ name: p.name, alive: isAlive(p) }));
    out.rows.push({
      prefix,
      via: null,
      gateways,
      installed: false,
      reason: 'not allowed by the access policy',
    });
  }
  for (const prefix of [...offers.keys()].sort()) {
    const usable = offers.get(prefix)!.sort(byPreference);
    const gateways = usable.map((o) => ({ name: o.peer.name, alive: isAlive(o.peer) }));
    const local = input.localSubnets.find((s) => overlaps(s, prefix));
    const own = input.ownRoutes?.find((s) => overlaps(s, prefix));
    let reason: string | undefined;
    if (!input.acceptRoutes) reason = 'not accepted (--accept-routes false)';
    else if (local) reason = `overlaps the local subnet ${local}`;
    else if (own) reason = `overlaps ${own}, which this device advertises`;
    else reason = unsafe(prefix, input.keepOut ?? []) ?? undefined;
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
    // No live gateway: the prefix stays on the preferred one (packets go nowhere) rather than
    // falling through to the exit node's 0.0.0.0/0: fail closed.
    give((chosen ?? usable[0]!).peer.id, prefix);
    out.rows.push({
      prefix,
      via: chosen?.peer.name ?? null,
      gateways,
      installed: true,
      ...(chosen ? {} : { reason: 'no live gateway' }),
    });
  }
  out.rows.sort((x, y) => (x.prefix < y.prefix ? -1 : x.prefix > y.prefix ? 1 : 0));
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

/** The device an exit node choice was pinned to when first resolved: its id and WireGuard key. */
export interface ExitNodePin {
  id: string;
  publicKey: string;
}

/** What resolving the exit node reads of a trusted netmap peer. */
export type ExitPeer = SelectorPeer & Pick<NetmapPeer, 'dnsName' | 'address' | 'publicKey' | 'keyChange'>;

/**
 * Why the choice resolves to no peer. not-found: nothing has the name (or the pinned device is
 * gone); replaced: the pinned device is gone but another has the name; key-changed: the pinned
 * device's key changed without a proof the agent accepts.
 */
export type ExitUnavailable = 'not-found' | 'replaced' | 'key-changed';

/** The chosen peer and the pin to keep (new when first resolved or after a proven key change). */
export type ExitResolution<P> = { peer: P; pin: ExitNodePin } | { peer: null; unavailable: ExitUnavailable };

/**
 * The peer the user's exit node choice means. Unpinned (just chosen): whichever peer `wanted`
 * names, to be pinned. Pinned: that device only, by id, whatever it is called now. A name can
 * pass to another device (removed, renamed, re-enrolled), which would then get all internet
 * traffic unnoticed: so that fails closed until the user chooses again.
 */
export function resolveExitNode<P extends ExitPeer>(
  wanted: string,
  pin: ExitNodePin | null,
  peers: readonly P[],
): ExitResolution<P> {
  if (!pin) {
    const found = findPeerFor(wanted, peers);
    if (!found) return { peer: null, unavailable: 'not-found' };
    return { peer: found, pin: { id: found.id, publicKey: found.publicKey } };
  }
  const peer = peers.find((p) => p.id === pin.id);
  if (!peer) return { peer: null, unavailable: findPeerFor(wanted, peers) ? 'replaced' : 'not-found' };
  if (peer.publicKey === pin.publicKey) return { peer, pin };
  // Found by its id: a rotation signed by the pinned key or an admin's re-key (PeerPins' rule).
  const proof = keyChangeProof(pin.publicKey, pin.id, peer);
  if (proof !== 'rotated' && proof !== 'rekeyed') return { peer: null, unavailable: 'key-changed' };
  return { peer, pin: { id: peer.id, publicKey: peer.publicKey } };
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
