/** One gateway of a prefix as the primary choice sees it. */
export interface PrimaryCandidate {
  deviceId: string;
  prefix: string;
  /** Online, approved, advertised and up. */
  eligible: boolean;
  /** First advertisement, ms. */
  since: number;
}

/**
 * The gateway clients prefer for each prefix: of the eligible ones, the one serving it longest,
 * then the lowest id (the same rule the agents apply to NetmapPeer.routes).
 */
export function primaryOf(candidates: readonly PrimaryCandidate[]): Map<string, string> {
  const best = new Map<string, PrimaryCandidate>();
  for (const c of candidates) {
    if (!c.eligible) continue;
    const b = best.get(c.prefix);
    if (!b || c.since < b.since || (c.since === b.since && c.deviceId < b.deviceId)) best.set(c.prefix, c);
  }
  return new Map([...best].map(([prefix, c]) => [prefix, c.deviceId]));
}
