import { Backoff, type BackoffOptions, BrokerRotation, DEFAULT_BACKOFF } from '@trellis/proto';
import type { Logger } from 'pino';
import type { Timers } from './timers';

/**
 * When to dial the broker again. A lost connection or failed attempt goes on at once to the next
 * broker instance (BrokerRotation); only after every one failed does it wait, with jittered
 * exponential backoff. At most one reconnect waits at a time.
 */
export class ReconnectSchedule {
  readonly rotation: BrokerRotation;
  private readonly backoff: Backoff;
  private timer: unknown = null;

  constructor(
    urls: readonly string[],
    backoff: BackoffOptions | undefined,
    private readonly timers: Timers,
    private readonly logger: Logger,
    private readonly dial: () => void,
  ) {
    this.rotation = new BrokerRotation(urls);
    this.backoff = new Backoff(backoff ?? DEFAULT_BACKOFF);
  }

  /** Whether a reconnect is waiting for its time. */
  get waiting(): boolean {
    return this.timer !== null;
  }

  /** Connected: the next round that fails backs off from the first step again. */
  connected(): void {
    this.backoff.reset();
  }

  /** At once to the next instance while one is left to try; after a whole round failed, backoff. */
  afterFailure(wasReady: boolean, lastError: string | null): void {
    this.schedule(this.rotation.retryNow(wasReady) ? 0 : this.backoff.next(), lastError);
  }

  /** A new round at once, without backoff (a resync: a new connection brings a fresh snapshot). */
  newRoundNow(lastError: string | null): void {
    this.rotation.endRound();
    this.schedule(0, lastError);
  }

  /** Forgets a waiting reconnect, and a dial still resolving broker names. */
  cancel(): void {
    this.rotation.cancel();
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number, lastError: string | null): void {
    if (this.timer !== null) return;
    this.logger.info({ delayMs, lastError }, 'reconnecting to broker');
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.dial();
    }, delayMs);
  }
}
