/** Failed logins a key may have before each next attempt must wait. */
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
 * Exponential backoff on failed logins, per key (a client address, an email): after 5 failures the
 * next attempt waits 1 s after the last failure, then 2, 4, … up to 15 minutes. A success clears the
 * key; failures are forgotten after an hour without one. Kept per instance, in memory.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Ms until `key` may try again (0: now). */
  waitMs(key: string): number {
    const f = this.live(key);
    if (!f || f.count < FREE_FAILURES) return 0;
    const wait = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** (f.count - FREE_FAILURES));
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

  private sweep(now: number): void {
    if (this.failures.size < 10_000) return;
    for (const [key, f] of this.failures) if (now - f.lastAt > FORGET_AFTER_MS) this.failures.delete(key);
  }
}
