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
