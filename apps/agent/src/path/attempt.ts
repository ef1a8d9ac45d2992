import type { Candidate, CandidateKind } from '@trellis/proto';
import type { PathTimings } from './path-types';

/**
 * One attempt at a direct path: its candidates, tried one at a time (a Probe each) from `startAt`.
 * Sans effects: the machine turns its answers into re-adds and reports.
 */
export class Attempt {
  /** Index of the candidate being tried; -1 before the start. */
  private index = -1;

  constructor(
    readonly id: string,
    readonly origin: 'punch' | 'local',
    /** This side initiates second and retries (the punch says so, else our key sorts first). */
    readonly leads: boolean,
    /**
     * Tried in order; a learned address is inserted (insertNext). A punch's is the machine's own
     * punch list, not a copy, so what it learns stays known after the attempt.
     */
    readonly candidates: Candidate[],
    /** Per-candidate deadline (a LAN candidate's is capped: PathTimings.lanDeadlineMs). */
    public deadlineMs: number,
    /** When the first candidate goes out (local clock). */
    readonly startAt: number,
  ) {}

  /** The next candidate's probe, or null after the last. */
  nextProbe(now: number, lastHandshakeMs: number, t: PathTimings, initiateAtOnce = false): Probe | null {
    this.index++;
    const c = this.candidates[this.index];
    return c === undefined ? null : new Probe(this, c, now, lastHandshakeMs, t, initiateAtOnce);
  }

  /** Caps the deadline (a relay arrived: traffic through it stops while we try). */
  capDeadline(probe: Probe, deadlineMs: number): void {
    this.deadlineMs = Math.min(this.deadlineMs, deadlineMs);
    probe.deadlineAt = Math.min(probe.deadlineAt, probe.startedAt + this.deadlineMs);
  }

  /**
   * On a wake-up while `probe` runs: 'next' to move on (its deadline, or a learned address to try
   * first), 'readd' to initiate again now, null to wait.
   */
  step(probe: Probe, now: number, kindOf: (endpoint: string) => CandidateKind): 'next' | 'readd' | null {
    const learned = probe.takeLearned(now);
    if (learned !== null && this.insertNext(learned, kindOf)) return 'next';
    return probe.step(now);
  }

  /** Makes `endpoint` the next candidate (moved up if listed later; ignored if tried). */
  private insertNext(endpoint: string, kindOf: (endpoint: string) => CandidateKind): boolean {
    const at = this.candidates.findIndex((c) => c.endpoint === endpoint);
    if (at !== -1 && at <= this.index) return false;
    const existing = at === -1 ? null : this.candidates.splice(at, 1)[0]!;
    const c = existing ?? { endpoint, kind: kindOf(endpoint), priority: 0 };
    this.candidates.splice(this.index + 1, 0, c);
    return true;
  }
}

/**
 * One candidate being tried: WireGuard pointed at it, re-added (a fresh initiation) on a growing
 * schedule until its deadline.
 *
 * Initiations that cross in flight overwrite each other's handshake state in WireGuard and both
 * responses are dropped, so in a coordinated punch only the leader retries; the follower sends
 * once per candidate, which opens its NAT for the leader's retries, and then only answers. In
 * attempts the agent starts itself (no coordination) both retry, the follower half an interval
 * after the leader.
 */
export class Probe {
  readonly endpoint: string;
  readonly startedAt: number;
  deadlineAt: number;
  /** Whether the first initiation went out (a punch's leader holds it back: PathTimings.leaderDelayMs). */
  initiated: boolean;
  private nextRetryAt: number;
  private retries = 0;
  private nextPollAt: number;
  /**
   * Where WireGuard moved the endpoint during this candidate: the peer's initiation reached us from
   * there (a peer-reflexive address, e.g. a symmetric NAT's port for us). Tried next, at our next
   * re-add, instead of what was left of the list.
   */
  learned: string | null = null;
  /**
   * The handshake from before this candidate (a relay's session, or a path the peer just made),
   * until our first re-add resets it: a leader that only set the endpoint still sees it, and it
   * says nothing about the candidate.
   */
  private priorHandshakeMs: number;
  /**
   * A handshake seen while WireGuard was on a relay (it may have come through it): it proves the
   * candidate only once packets arrive with WireGuard back on the candidate.
   */
  private relayedHandshakeMs: number | null = null;

  constructor(
    attempt: Attempt,
    candidate: Candidate,
    now: number,
    lastHandshakeMs: number,
    private readonly t: PathTimings,
    /** Re-add at once even as a punch's leader (a handshake of the previous path may be in flight). */
    initiateAtOnce = false,
  ) {
    this.endpoint = candidate.endpoint;
    this.startedAt = now;
    const lan = candidate.kind === 'lan';
    this.deadlineAt = now + (lan ? Math.min(attempt.deadlineMs, t.lanDeadlineMs) : attempt.deadlineMs);
    this.nextPollAt = now + t.probePollMs;
    this.priorHandshakeMs = lastHandshakeMs;
    this.initiated = initiateAtOnce || !(attempt.leads && attempt.origin === 'punch' && t.leaderDelayMs > 0);
    if (!this.initiated) this.nextRetryAt = now + t.leaderDelayMs;
    else if (attempt.leads) this.nextRetryAt = now + t.retryIntervalMs;
    else if (attempt.origin === 'local') this.nextRetryAt = now + t.retryIntervalMs * 1.5;
    else this.nextRetryAt = Number.POSITIVE_INFINITY;
  }

  /** A re-add toward the candidate: WireGuard forgets the handshake from before. */
  readd(): string {
    this.priorHandshakeMs = 0;
    return this.endpoint;
  }

  /**
   * Whether a handshake (WireGuard on the candidate now) says the candidate works: not the one from
   * before, nor one seen on a relay unless packets (`rxBytes` since the last look) came since, and
   * newer than the attempt's start (UAPI's whole seconds: one stamped in the start's second may be ours).
   */
  madeBy(lastHandshakeMs: number, startAt: number, rxBytes: number): boolean {
    if (lastHandshakeMs === this.priorHandshakeMs) return false;
    if (lastHandshakeMs === this.relayedHandshakeMs && rxBytes === 0) return false;
    return lastHandshakeMs + this.t.handshakeResolutionMs > startAt;
  }

  /** WireGuard was seen on a relay during this probe, with this handshake. */
  seenOnRelay(lastHandshakeMs: number): void {
    this.relayedHandshakeMs = lastHandshakeMs;
  }

  wakeAt(now: number): number {
    return Math.min(this.deadlineAt, this.nextRetryAt, Math.max(this.nextPollAt, now));
  }

  /** The learned address, once something is due (the deadline or a re-add); taken once. */
  takeLearned(now: number): string | null {
    if (now >= this.nextPollAt) this.nextPollAt = now + this.t.probePollMs;
    if (this.learned === null || (now < this.deadlineAt && now < this.nextRetryAt)) return null;
    const learned = this.learned;
    this.learned = null;
    return learned;
  }

  step(now: number): 'next' | 'readd' | null {
    if (now >= this.deadlineAt) return 'next';
    if (now < this.nextRetryAt) return null;
    if (!this.initiated) {
      this.initiated = true;
      this.nextRetryAt = now + this.t.retryIntervalMs;
      return 'readd';
    }
    this.retries++;
    this.nextRetryAt += this.t.retryIntervalMs * this.t.retryGrowth ** this.retries;
    return 'readd';
  }
}
