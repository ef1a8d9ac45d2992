import type { PathTimings } from './path-types';

/**
 * WireGuard's packets as tx_bytes/rx_bytes count them (UDP payload): a keepalive is an empty data
 * packet, a data packet is at least 48 bytes, handshake initiation and response are fixed.
 */
export const KEEPALIVE_BYTES = 32;
export const INITIATION_BYTES = 148;
export const RESPONSE_BYTES = 92;

/** Keepalives both ways are allowed once per started slot (persistent every 25 s, passive 10 s after data). */
const KEEPALIVE_SLOT_MS = 10_000;
/** Per handshake: initiation, response, the confirming keepalive, and one retried initiation. */
const HANDSHAKE_BYTES = 2 * INITIATION_BYTES + RESPONSE_BYTES + KEEPALIVE_BYTES;

/**
 * Bytes (tx + rx) that keepalives and handshakes alone may add in `elapsedMs` with `handshakes` new
 * handshakes seen: two keepalives per started 10 s, and one handshake's worth more than seen (one
 * may be in flight). 180 s with two rekeys: 64 × 19 + 420 × 3 = 2476 bytes.
 */
export function keepaliveAllowance(elapsedMs: number, handshakes: number): number {
  const slots = Math.floor(Math.max(0, elapsedMs) / KEEPALIVE_SLOT_MS) + 1;
  return 2 * KEEPALIVE_BYTES * slots + HANDSHAKE_BYTES * (handshakes + 1);
}

export interface TrafficDelta {
  tx: number;
  rx: number;
}

/**
 * A peer's byte counters, read at every observation. Traffic is "real" when the bytes since the
 * last mark exceed what keepalives and handshakes can explain (keepaliveAllowance); then the mark
 * moves to now. A path in use with no real traffic for `idleAfterMs` goes dormant.
 */
export class TrafficMeter {
  private last: TrafficDelta | null = null;
  private markAt: number;
  private bytes = 0;
  private handshakes = 0;
  /** Local time of the last real traffic (or of the path coming into use). */
  lastActiveAt: number;

  constructor(now: number) {
    this.markAt = now;
    this.lastActiveAt = now;
  }

  /**
   * Counters as UAPI reports them now; returns the growth since the previous sample. A re-add
   * resets WireGuard's counters: a smaller value counts from 0.
   */
  sample(tx: number, rx: number, newHandshake: boolean, now: number): TrafficDelta {
    const prev = this.last;
    this.last = { tx, rx };
    if (prev === null) return { tx: 0, rx: 0 };
    const d = { tx: tx >= prev.tx ? tx - prev.tx : tx, rx: rx >= prev.rx ? rx - prev.rx : rx };
    this.bytes += d.tx + d.rx;
    if (newHandshake) this.handshakes++;
    if (this.bytes > keepaliveAllowance(now - this.markAt, this.handshakes)) this.touch(now);
    return d;
  }

  /** Counts as traffic now (a path just came into use: its idle time starts here). */
  touch(now: number): void {
    this.lastActiveAt = now;
    this.markAt = now;
    this.bytes = 0;
    this.handshakes = 0;
  }
}

/**
 * Whether a sample of a dormant peer says WireGuard has packets for it: tx grew by more than one
 * keepalive (an initiation is 148 bytes, data at least 48) while nothing came back and no handshake
 * completed. Growth with rx is the peer talking to us (our 92-byte response to its initiation), not
 * demand: re-adding then would throw its handshake away.
 */
export function isDemand(d: TrafficDelta, newHandshake: boolean): boolean {
  return !newHandshake && d.tx > KEEPALIVE_BYTES && d.rx === 0;
}

/**
 * When to send `want-path` while demand has no path: at once, then after wantInitialMs, doubling
 * up to wantMaxMs, until reset (a path works, or the peer went dormant).
 */
export class WantSchedule {
  private nextAt: number | null = null;
  private interval = 0;

  constructor(private readonly t: PathTimings) {}

  get active(): boolean {
    return this.nextAt !== null;
  }

  /** True when a want is due now (the first one always); moves the schedule on. */
  due(now: number): boolean {
    if (this.nextAt === null) {
      this.interval = this.t.wantInitialMs;
    } else {
      if (now < this.nextAt) return false;
      this.interval = Math.min(this.interval * 2, this.t.wantMaxMs);
    }
    this.nextAt = now + this.interval;
    return true;
  }

  wakeAt(): number | null {
    return this.nextAt;
  }

  reset(): void {
    this.nextAt = null;
  }
}
