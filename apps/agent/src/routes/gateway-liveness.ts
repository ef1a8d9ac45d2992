/**
 * Whether a gateway's tunnel is alive, from WireGuard's byte counters (sampled every second while
 * a route has a second gateway or an exit node is chosen). Both ends keep a 2 s keepalive while a
 * path is in use, so a live tunnel's rx grows every 2 s.
 *
 * Rule: a gateway is alive unless proven dead, and it is proven dead when we have been sending to
 * it (tx grew) for DEAD_AFTER_MS without its rx growing once. An idle tunnel (a dormant path: no
 * keepalive, nothing sent) is not proven anything and counts as alive, so a new or quiet gateway is
 * used at once; the first packets towards a dead one prove it dead within DEAD_AFTER_MS. Sans-IO.
 */
export const DEAD_AFTER_MS = 5_000;
/** How often the driver samples the counters while liveness matters. */
export const LIVENESS_SAMPLE_MS = 1_000;

export interface CounterSample {
  peerId: string;
  rxBytes: number;
  txBytes: number;
}

interface Track {
  rx: number;
  tx: number;
  /** When rx last grew; null: not since it was first sampled. */
  rxAt: number | null;
  /** When tx first grew after the last rx growth; null: nothing unanswered. */
  unansweredSince: number | null;
}

export class GatewayLiveness {
  private readonly tracks = new Map<string, Track>();

  /** One reading of the watched peers' counters; peers left out are forgotten. */
  observe(now: number, samples: readonly CounterSample[]): void {
    const seen = new Set<string>();
    for (const s of samples) {
      seen.add(s.peerId);
      const t = this.tracks.get(s.peerId);
      if (!t) {
        this.tracks.set(s.peerId, { rx: s.rxBytes, tx: s.txBytes, rxAt: null, unansweredSince: null });
        continue;
      }
      // A re-added peer starts its counters again: a drop is a new start, not silence.
      if (s.rxBytes < t.rx) t.unansweredSince = null;
      else if (s.rxBytes > t.rx) {
        t.unansweredSince = null;
        t.rxAt = now;
      } else if (s.txBytes > t.tx && t.unansweredSince === null) t.unansweredSince = now;
      t.rx = s.rxBytes;
      t.tx = s.txBytes;
    }
    for (const id of this.tracks.keys()) if (!seen.has(id)) this.tracks.delete(id);
  }

  /** Starts over for a peer (it came back online: what its old tunnel did proves nothing). */
  forget(peerId: string): void {
    this.tracks.delete(peerId);
  }

  /** Whether any peer is being followed. */
  get tracking(): boolean {
    return this.tracks.size > 0;
  }

  alive(peerId: string, now: number): boolean {
    const since = this.tracks.get(peerId)?.unansweredSince ?? null;
    return since === null || now - since < DEAD_AFTER_MS;
  }

  /**
   * Whether the peer answered within DEAD_AFTER_MS: required before traffic goes back to a more
   * preferred gateway (a returning one may be online before its tunnel works).
   */
  proven(peerId: string, now: number): boolean {
    const at = this.tracks.get(peerId)?.rxAt ?? null;
    return at !== null && now - at < DEAD_AFTER_MS;
  }

  /** Every followed peer's verdicts now, for comparing one sample's outcome with the last. */
  verdicts(now: number): string {
    return [...this.tracks.keys()]
      .sort()
      .map((id) => `${id}:${this.alive(id, now) ? 'alive' : 'dead'}${this.proven(id, now) ? '+' : ''}`)
      .join(',');
  }
}
