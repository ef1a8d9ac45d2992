/** Failed logins a key may have before each next attempt must wait (default). */
const FREE_FAILURES = 5;
const FIRST_WAIT_MS = 1_000;
const MAX_WAIT_MS = 15 * 60_000;
/** Failures older than this are forgotten. */
const FORGET_AFTER_MS = 60 * 60_000;

interface Failures {
  count: number;
  lastAt: number;
}

/**
 * Exponential backoff on failed logins, per key (a client address, an email): after `free` failures
 * the next attempt waits 1 s after the last failure, then 2, 4, … up to 15 minutes. An attempt
 * counts as failed from its start (`attempt`), so a burst of concurrent guesses is stopped at the
 * limit, not after it; a success clears the key. Failures are forgotten after an hour without one.
 * Kept per instance, in memory.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly free = FREE_FAILURES,
  ) {}

  /** Counts an attempt as failed until `succeeded` clears it; the wait it must honour first is `waitMs`. */
  attempt(key: string): void {
    this.failed(key);
  }

  /** Ms until `key` may try again (0: now). */
  waitMs(key: string): number {
    const f = this.live(key);
    if (!f || f.count < this.free) return 0;
    const wait = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (f.count - this.free));
    return Math.max(0, f.lastAt + wait - this.now());
  }

  failed(key: string): void {
    const now = this.now();
    this.sweep(now);
    const f = this.live(key);
    this.failures.set(key, { count: (f?.count ?? 0) + 1, lastAt: now });
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }

  private live(key: string): Failures | undefined {
    const f = this.failures.get(key);
    if (f && this.now() - f.lastAt > FORGET_AFTER_MS) {
      this.failures.delete(key);
      return undefined;
    }
    return f;
  }

  private sweptAt = 0;

  /** Forgets old keys, at most once a minute (random emails must not make every failure a full scan). */
  private sweep(now: number): void {
    if (now - this.sweptAt < 60_000) return;
    this.sweptAt = now;
    for (const [key, f] of this.failures) if (now - f.lastAt > FORGET_AFTER_MS) this.failures.delete(key);
  }
}
