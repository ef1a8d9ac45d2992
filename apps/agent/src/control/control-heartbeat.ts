import { HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import type { Timers } from './timers';

/** Pings sent right after authentication, each after the previous pong, so the clock offset is known early. */
export const DEFAULT_CLOCK_PINGS = 3;

/**
 * Liveness of a ready connection: a ping every HEARTBEAT_INTERVAL_MS, and the broker counts as gone
 * after three intervals without a message from it. Right after authentication, a few pings in a row
 * (each after the previous pong) so the clock offset is known early.
 */
export class ControlHeartbeat {
  private lastHeard = 0;
  private timer: unknown = null;
  private clockPingsLeft = 0;

  constructor(
    private readonly timers: Timers,
    private readonly sendPing: (t: number) => void,
    private readonly onSilent: () => void,
  ) {}

  /** The broker was heard from (any message, or the connection opening). */
  heard(): void {
    this.lastHeard = this.timers.now();
  }

  /** The connection is ready: the first of `clockPings` pings now, and the heartbeat from now on. */
  start(clockPings: number): void {
    this.clockPingsLeft = clockPings;
    this.nextClockPing();
    this.timer = this.timers.setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
  }

  /** After a pong: the next clock ping, while any is left. */
  nextClockPing(): void {
    if (this.clockPingsLeft <= 0) return;
    this.clockPingsLeft -= 1;
    this.sendPing(this.timers.now());
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearInterval(this.timer);
    this.timer = null;
  }

  private beat(): void {
    if (this.timers.now() - this.lastHeard > 3 * HEARTBEAT_INTERVAL_MS) {
      this.onSilent();
      return;
    }
    this.sendPing(this.timers.now());
  }
}
