/**
 * How many control messages one connection may send: a token bucket (sans I/O, the caller passes
 * `now`). An agent sends a few a minute, and a burst at connect (a `want-path` per relayed peer);
 * a client past the budget is closed instead of queueing work and memory without bound.
 */
export class MessageBudget {
  private tokens: number;
  private at: number;

  constructor(
    /** Largest burst. */
    private readonly capacity: number,
    /** Sustained messages per second. */
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  /** Spends one message; false when the budget is exhausted. */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.at);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A device's budget: a burst of 2,000 (one want per relayed peer at connect), then 200 per second. */
export const DEVICE_MESSAGE_BURST = 2_000;
export const DEVICE_MESSAGES_PER_SECOND = 200;
