import { HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import type { Timers } from './timers';

/** Pings sent right after authentication, each after the previous pong, so the clock offset is known early. */
export const DEFAULT_CLOCK_PINGS = 3;
/**
 * After a ping, how long the broker has to answer before the connection counts as dead: a TCP
 * connection with data in flight is retransmitted for minutes before the kernel gives up, and the
 * old rule (three silent intervals, 45 s) left a device without changes that long. Generous enough
 * for a broker busy with a reconnection storm.
 */
export const PONG_DEADLINE_MS = 10_000;
/** After a network change, how long the broker has to answer the probe (ping) before we reconnect. */
export const PROBE_DEADLINE_MS = 4_000;

/**
 * Liveness of a ready connection: a ping every HEARTBEAT_INTERVAL_MS, each to be answered (any
 * message counts) within PONG_DEADLINE_MS; a probe after a network change must be answered within
 * PROBE_DEADLINE_MS. Right after authentication, a few pings in a row (each after the previous
 * pong) so the clock offset is known early.
 */
export class ControlHeartbeat {
  private timer: unknown = null;
  /** Armed while a ping is unanswered: when the connection counts as dead. */
  private deadline: { handle: unknown; at: number } | null = null;
  private clockPingsLeft = 0;

  constructor(
    private readonly timers: Timers,
    private readonly sendPing: (t: number) => void,
    private readonly onSilent: () => void,
  ) {}

  /** The broker was heard from (any message, or the connection opening). */
  heard(): void {
    this.disarm();
  }

  /** The connection is ready: the first of `clockPings` pings now, and the heartbeat from now on. */
  start(clockPings: number): void {
    this.clockPingsLeft = clockPings;
    this.nextClockPing();
    this.timer = this.timers.setInterval(() => this.ping(PONG_DEADLINE_MS), HEARTBEAT_INTERVAL_MS);
  }

  /** After a pong: the next clock ping, while any is left. */
  nextClockPing(): void {
    if (this.clockPingsLeft <= 0) return;
    this.clockPingsLeft -= 1;
    this.ping(PONG_DEADLINE_MS);
  }

  /** The network changed: is the connection still alive? A ping now, with the short deadline. */
  probe(): void {
    if (this.timer === null) return;
    this.ping(PROBE_DEADLINE_MS);
  }

  stop(): void {
    if (this.timer !== null) this.timers.clearInterval(this.timer);
    this.timer = null;
    this.disarm();
  }

  private ping(deadlineMs: number): void {
    const now = this.timers.now();
    this.sendPing(now);
    // An earlier unanswered ping keeps its deadline unless this one's is sooner.
    if (this.deadline && this.deadline.at <= now + deadlineMs) return;
    this.disarm();
    const handle = this.timers.setTimeout(() => {
      this.deadline = null;
      this.onSilent();
    }, deadlineMs);
    this.deadline = { handle, at: now + deadlineMs };
  }

  private disarm(): void {
    if (this.deadline) this.timers.clearTimeout(this.deadline.handle);
    this.deadline = null;
  }
}
