/**
 * One-shot timers by key whose firing waits while the instance is busy (devices still reconnecting
 * to it): past its delay a busy timer looks again every `recheckMs`, and fires at the latest
 * `maxMs` after it was armed. Offline marks (OfflineGrace) and idle account netmaps (ControlHub)
 * both wait this way: either firing mid-storm turns the devices still queued into snapshots.
 */
export class HeldTimers<K> {
  private readonly timers = new Map<K, NodeJS.Timeout>();

  constructor(
    private readonly opts: {
      recheckMs: number;
      busy: () => boolean;
      /** A timer was held back past its delay (once per arming). */
      onHeld?: () => void;
    },
  ) {}

  /** Runs `fire` after `delayMs`, or later while busy, at most max(delayMs, maxMs) from now. Re-arming starts over. */
  arm(key: K, delayMs: number, maxMs: number, fire: () => void): void {
    const holdUntil = Date.now() + Math.max(delayMs, maxMs);
    let held = false;
    const wait = (ms: number) => {
      clearTimeout(this.timers.get(key));
      const timer = setTimeout(() => {
        if (this.opts.busy() && Date.now() + this.opts.recheckMs <= holdUntil) {
          if (!held) this.opts.onHeld?.();
          held = true;
          wait(this.opts.recheckMs);
          return;
        }
        this.timers.delete(key);
        fire();
      }, ms);
      timer.unref();
      this.timers.set(key, timer);
    };
    wait(delayMs);
  }

  has(key: K): boolean {
    return this.timers.has(key);
  }

  cancel(key: K): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  get size(): number {
    return this.timers.size;
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
