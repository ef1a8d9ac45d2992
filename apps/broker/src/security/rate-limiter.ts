/**
 * At most `limit` events per key within any `windowMs` (a sliding log per key). Kept in the
 * instance's memory: with several instances a client gets `limit` at each, which still bounds
 * guessing and flooding to a small multiple.
 */
export class RateLimiter {
  private readonly events = new Map<string, number[]>();
  private sweptAt = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts an event for `key`; false (and not counted) when the key is over its limit. */
  take(key: string): boolean {
    const now = this.now();
    this.sweep(now);
    const recent = (this.events.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.limit) {
      this.events.set(key, recent);
      return false;
    }
    recent.push(now);
    this.events.set(key, recent);
    return true;
  }

  /** Takes back the latest event of `key` (it turned out not to count, e.g. a right code). */
  refund(key: string): void {
    this.events.get(key)?.pop();
  }

  /** Ms until `key` may have its next event (0: now). */
  retryAfterMs(key: string): number {
    const now = this.now();
    const recent = (this.events.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length < this.limit) return 0;
    return recent[recent.length - this.limit]! + this.windowMs - now;
  }

  /** Forgets keys with nothing in the window, at most once a window: memory stays bounded by the active keys. */
  private sweep(now: number): void {
    if (now - this.sweptAt < this.windowMs) return;
    this.sweptAt = now;
    for (const [key, times] of this.events)
      if (times.every((t) => now - t >= this.windowMs)) this.events.delete(key);
  }
}
