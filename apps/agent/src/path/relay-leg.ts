import type { PathTimings } from './path-types';

/** A relay allocation the broker gave for one peer (`relay` message), as the path logic uses it. */
export interface RelayPath {
  allocationId: string;
  relayId: string;
  relayName: string;
  /** The allocation's UDP address (what the broker gave; reported in `path`). */
  endpoint: string;
  /** Where WireGuard sends: `endpoint`, or the loopback TCP-fallback proxy (`127.0.0.1:port`). */
  wgEndpoint: string;
}

/**
 * WireGuard pointed at a relay by a re-add, until a fresh handshake through it confirms the path.
 * The relay binds each side by its first handshake; when both sides re-add at the same moment their
 * initiations cross and both fail (as in a punch), so the leader re-adds again on a growing
 * schedule and the follower sends once and then only answers.
 */
export class RelayLeg {
  confirmedAt: number | null = null;
  private nextRetryAt: number;
  private nextPollAt: number;
  private retries = 0;

  constructor(
    public relay: RelayPath,
    leads: boolean,
    private readonly t: PathTimings,
    /** Local time of the first re-add toward the relay. */
    readonly since: number,
  ) {
    this.nextRetryAt = leads ? since + t.retryIntervalMs : Number.POSITIVE_INFINITY;
    this.nextPollAt = since + t.probePollMs;
  }

  /** Whether a handshake is newer than the re-add (UAPI's whole seconds: within its second counts). */
  isFresh(lastHandshakeMs: number): boolean {
    return lastHandshakeMs > 0 && lastHandshakeMs + this.t.handshakeResolutionMs > this.since;
  }

  /** On a wake-up while unconfirmed: true when the leader should re-add again now. */
  retryDue(now: number): boolean {
    if (!this.confirming(now)) return false;
    if (now >= this.nextPollAt) this.nextPollAt = now + this.t.probePollMs;
    if (now < this.nextRetryAt) return false;
    this.retries++;
    this.nextRetryAt += this.t.retryIntervalMs * this.t.retryGrowth ** this.retries;
    return true;
  }

  /** Fast polls and retries only for a while: after that WireGuard's own 5 s retries carry on. */
  nextWakeAt(now: number): number | null {
    if (!this.confirming(now)) return null;
    return Math.min(this.nextRetryAt, Math.max(this.nextPollAt, now), this.since + this.t.relayConfirmMs);
  }

  private confirming(now: number): boolean {
    return this.confirmedAt === null && now < this.since + this.t.relayConfirmMs;
  }
}
