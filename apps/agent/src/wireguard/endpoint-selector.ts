import { inCidr } from '../platform/candidates';
/**
 * Decides which endpoint WireGuard should use for a peer. Kept behind an interface because NAT
 * traversal replaces this rule with a per-peer path state machine.
 */
export interface EndpointSelector {
  /** The endpoint to set now, or null to leave WireGuard's current one (possibly none) alone. */
  select(peerPublicKey: string, candidates: readonly string[], current: string | null): string | null;
}

/**
 * Today's rule: keep the current endpoint while it is one of the candidates (WireGuard roaming may
 * have picked it); otherwise use the best (first) candidate.
 */
export class FirstCandidateSelector implements EndpointSelector {
  select(_peer: string, candidates: readonly string[], current: string | null): string | null {
    if (candidates.length === 0) return null;
    if (current !== null && candidates.includes(current)) return null;
    return candidates[0]!;
  }
}

/**
 * Prefers a candidate on one of this device's own subnets: two devices behind one NAT reach each
 * other over the LAN, since most routers do not hairpin. Otherwise it behaves as FirstCandidateSelector
 * (the broker lists the address it observed first). NAT traversal replaces this with handshake-verified
 * path probing, which also copes with two sites that happen to use the same private subnet.
 */
export class OnLinkFirstSelector implements EndpointSelector {
  private readonly fallback = new FirstCandidateSelector();
  constructor(private readonly localSubnets: () => readonly string[]) {}

  select(peer: string, candidates: readonly string[], current: string | null): string | null {
    const subnets = this.localSubnets();
    const onLink = candidates.find((c) => subnets.some((s) => inCidr(hostOf(c), s)));
    if (onLink !== undefined) return onLink === current ? null : onLink;
    return this.fallback.select(peer, candidates, current);
  }
}

function hostOf(endpoint: string): string {
  return endpoint.slice(0, endpoint.lastIndexOf(':'));
}
