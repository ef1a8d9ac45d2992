export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Returns [0, 1); injectable so tests are deterministic. */
  random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, random: Math.random };

/**
 * Exponential backoff with jitter: the n-th delay is uniform in [cap/2, cap) where
 * cap = min(maxMs, initialMs·2ⁿ). Jitter keeps a fleet from reconnecting in lockstep after a broker
 * restart. How every client of the broker (agents, relays) reconnects.
 */
export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  next(): number {
    const cap = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(cap / 2 + (cap / 2) * this.opts.random());
  }

  reset(): void {
    this.attempt = 0;
  }
}
