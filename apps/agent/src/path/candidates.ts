import { type Candidate, type CandidateKind, ipv4InCidr } from '@trellis/proto';

export type PathKind = 'direct-lan' | 'direct-internet' | 'relay' | 'none';

const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'];

export function hostOf(endpoint: string): string {
  const host = endpoint.slice(0, endpoint.lastIndexOf(':'));
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

function isIpv4(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/**
 * Candidates from a netmap peer's plain endpoint list (best first): an address on one of our own
 * subnets is `lan`, anything else is what the broker `observed`. Priorities fall with the position.
 */
export function candidatesFromEndpoints(
  endpoints: readonly string[],
  localSubnets: readonly string[],
): Candidate[] {
  return endpoints.map((endpoint, i) => ({
    endpoint,
    kind: isOnLink(endpoint, localSubnets) ? 'lan' : 'observed',
    priority: endpoints.length - i,
  }));
}

function isOnLink(endpoint: string, localSubnets: readonly string[]): boolean {
  const host = hostOf(endpoint);
  return isIpv4(host) && localSubnets.some((s) => ipv4InCidr(host, s));
}

/**
 * A netmap peer's typed candidates as seen from our links now: a LAN address counts only on one of
 * our subnets (elsewhere it is someone else's private network). Depends on where we are, so it is
 * worked out again whenever our own addresses change, not only when the netmap does.
 */
export function onLinkCandidates(
  candidates: readonly Candidate[],
  localSubnets: readonly string[],
): Candidate[] {
  return candidates.filter((c) => c.kind !== 'lan' || isOnLink(c.endpoint, localSubnets));
}

/**
 * The order to try candidates in: LAN ones first (two devices behind one NAT should talk over the LAN,
 * since most routers do not hairpin), then the rest by priority, highest first; ties keep list order.
 */
export function orderCandidates(candidates: readonly Candidate[]): Candidate[] {
  return candidates
    .map((c, i) => ({ c, i }))
    .sort((a, b) => lanRank(a.c) - lanRank(b.c) || b.c.priority - a.c.priority || a.i - b.i)
    .map(({ c }) => c);
}

function lanRank(c: Candidate): number {
  return c.kind === 'lan' ? 0 : 1;
}

/**
 * One list from a punch's candidates (explicit kinds, so they win) and the netmap's (which may know
 * newer addresses), without duplicate endpoints; punch entries rank above netmap-only ones.
 */
export function mergeCandidates(punch: readonly Candidate[], netmap: readonly Candidate[]): Candidate[] {
  const seen = new Set(punch.map((c) => c.endpoint));
  const extra = netmap.filter((c) => !seen.has(c.endpoint));
  const list = [...orderCandidates(punch), ...orderCandidates(extra)];
  return [...list.filter((c) => c.kind === 'lan'), ...list.filter((c) => c.kind !== 'lan')];
}

/**
 * Where to leave WireGuard without keepalive when no path is in use: the best public candidate
 * (a LAN one only when there is nothing else), so its own initiations for packets go somewhere.
 */
export function parkingCandidate(ordered: readonly Candidate[]): Candidate | undefined {
  return ordered.find((c) => c.kind !== 'lan') ?? ordered[0];
}

/** The kind of an endpoint WireGuard reports: from the candidate lists, else by its address. */
export function kindOfEndpoint(endpoint: string, known: readonly Candidate[]): CandidateKind {
  const hit = known.find((c) => c.endpoint === endpoint);
  if (hit) return hit.kind;
  const host = hostOf(endpoint);
  return isIpv4(host) && PRIVATE_V4.some((s) => ipv4InCidr(host, s)) ? 'lan' : 'observed';
}

export function pathKindOf(kind: CandidateKind): PathKind {
  return kind === 'lan' ? 'direct-lan' : 'direct-internet';
}
