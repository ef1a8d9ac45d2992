import type { Candidate, MappingType } from '@trellis/proto';
import { parseEndpoint } from '@trellis/proto';

/** What the broker knows about reaching one side of a pair. */
export interface PunchSide {
  candidates: readonly Candidate[];
  mappingType: MappingType | null | undefined;
}

/** The address the world sees the device at: its reflexive (else observed) candidate's host. */
export function publicIpOf(side: PunchSide): string | null {
  const c =
    side.candidates.find((x) => x.kind === 'reflexive') ?? side.candidates.find((x) => x.kind === 'observed');
  return c ? (parseEndpoint(c.endpoint)?.host ?? null) : null;
}

/**
 * Whether a direct path can work at all between two devices (`reflectorsRun`: the broker runs
 * endpoint reflectors, so every device that can send UDP gets a reflexive candidate). Two NATs that both map per destination
 * (symmetric) never learn each other's port: skip them, unless one side has a port the gateway
 * forwards or both sit behind the same public address (then the LAN works).
 */
export function punchable(a: PunchSide, b: PunchSide, reflectorsRun = false): boolean {
  if (sharePublicIp(a, b)) return true;
  if (hasKind(a, 'portmapped') || hasKind(b, 'portmapped')) return true;
  // With reflectors running, a device they have not seen sends no UDP out (yet, or at all: a
  // network that blocks UDP). Its reflexive address arriving is a candidate change that punches.
  if (reflectorsRun && (!hasKind(a, 'reflexive') || !hasKind(b, 'reflexive'))) return false;
  return !(a.mappingType === 'endpoint-dependent' && b.mappingType === 'endpoint-dependent');
}

export function sharePublicIp(a: PunchSide, b: PunchSide): boolean {
  const ia = publicIpOf(a);
  return ia !== null && ia === publicIpOf(b);
}

/**
 * The candidates of `peer` to send to `viewer`, best first. LAN addresses only when both share a
 * public address: otherwise they are someone else's private network and trying them wastes time.
 */
export function candidatesFor(viewer: PunchSide, peer: PunchSide): Candidate[] {
  const sameSite = sharePublicIp(viewer, peer);
  const sorted = [...peer.candidates]
    .filter((c) => sameSite || c.kind !== 'lan')
    .sort((x, y) => y.priority - x.priority);
  if (peer.mappingType !== 'endpoint-dependent') return sorted;
  // A symmetric NAT's port for the viewer is none the reflectors (or the control connection) saw:
  // each such candidate only opens the viewer's own NAT towards that address, so one per address
  // does it (and each extra one would cost a whole deadline before the pair goes to the relay).
  const hosts = new Set<string>();
  return sorted.filter((c) => {
    if (c.kind !== 'reflexive' && c.kind !== 'observed') return true;
    const host = parseEndpoint(c.endpoint)?.host ?? c.endpoint;
    if (hosts.has(host)) return false;
    hosts.add(host);
    return true;
  });
}

function hasKind(side: PunchSide, kind: Candidate['kind']): boolean {
  return side.candidates.some((c) => c.kind === kind);
}
