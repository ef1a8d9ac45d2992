import type { Candidate, CandidateKind, PathReportMessage } from '@trellis/proto';
import type { Attempt, Probe } from './attempt';
import { hostOf, mergeCandidates } from './candidates';
import { TrafficMeter, WantSchedule } from './demand';
import type { PathEffect, PathTimings } from './path-types';
import type { RelayLeg, RelayPath } from './relay-leg';

/** The path's phase (PathPhase) with the data that exists only in it. */
export type PhaseState =
  | { phase: 'idle' }
  | { phase: 'dormant' }
  | { phase: 'scheduled'; attempt: Attempt }
  | { phase: 'probing'; attempt: Attempt; probe: Probe }
  | {
      phase: 'direct';
      endpoint: string;
      kind: CandidateKind;
      /**
       * The endpoint the netmap says the peer left, until the next look at WireGuard decides: still
       * there, the path is dead; elsewhere, WireGuard followed the peer's packets (see setCandidates).
       */
      movedFrom: string | null;
    }
  | {
      phase: 'backoff';
      retryAt: number;
      /** WireGuard had packets for the peer in this backoff: retry, else go dormant. */
      demandSeen: boolean;
    };

export type Probing = Extract<PhaseState, { phase: 'probing' }>;

/**
 * One peer's path state, shared by the machine's parts (attempts, the relay leg, dormancy): the
 * phase, what spans phases, and the effects that keep `endpoint`/`keepaliveOn` in step.
 */
export class PathContext {
  state: PhaseState = { phase: 'idle' };
  netmapCandidates: Candidate[] = [];
  punchCandidates: Candidate[] = [];
  /** Since when the reported path kind has had its value. */
  pathSince: number;
  lastHandshakeMs = 0;
  /** Local time of the last handshake we counted as new (or of a path coming into use). */
  lastAliveAt = 0;
  /** Failed attempts in a row: the backoff grows with them across the attempts between backoffs. */
  failures = 0;
  /** The last attempt's id: status shows it after the attempt too, until dormant or nothing to try. */
  attemptId: string | null = null;
  localIds = 0;
  /** What we last told WireGuard the endpoint is. */
  endpoint: string | null = null;
  /** Whether WireGuard has persistent keepalive for the peer (only while a path is wanted or in use). */
  keepaliveOn = false;
  /** The broker's relay allocation for this peer, if any. */
  relay: RelayPath | null = null;
  /**
   * Set while WireGuard points at the relay. Spans phases, so not in PhaseState: the same leg (and
   * its confirmation) carries on through idle, backoff, dormant and a punch's wait (scheduled);
   * only a candidate (probing) or a direct path takes WireGuard off it.
   */
  onRelay: RelayLeg | null = null;
  readonly meter: TrafficMeter;
  readonly want: WantSchedule;
  constructor(
    readonly peerId: string,
    readonly publicKey: string,
    /** True when our key sorts first: we retry in punches; the follower only in its own attempts. */
    readonly leads: boolean,
    readonly t: PathTimings,
    now: number,
    private readonly isRelayHost: (host: string) => boolean,
    /** Where a dormant peer with no candidate points WireGuard (see PeerPathMachine). */
    readonly demandSink: string | null,
  ) {
    this.pathSince = now;
    this.meter = new TrafficMeter(now);
    this.want = new WantSchedule(t);
  }

  /** Moves to `next`; leaving a direct path ends its `since`. */
  enter(next: PhaseState, now: number): void {
    if (this.state.phase === 'direct') this.pathSince = now;
    this.state = next;
  }

  /** Backs off until `retryAt`; demand seen from here on decides what then. */
  backOff(retryAt: number, now: number): void {
    this.enter({ phase: 'backoff', retryAt, demandSeen: false }, now);
  }

  /** Leaves a direct path the peer gave up on (it moved to a relay) as a failure: back off. */
  backOffFromDirect(now: number): void {
    this.failures++;
    const retryAt = now + this.t.backoffInitialMs;
    this.backOff(retryAt, now);
  }

  known(): Candidate[] {
    return mergeCandidates(this.punchCandidates, this.netmapCandidates);
  }

  /** Our allocation, by the address the broker gave or WireGuard's (a TCP fallback's loopback). */
  isOurRelay(endpoint: string): boolean {
    return this.relay !== null && (endpoint === this.relay.wgEndpoint || endpoint === this.relay.endpoint);
  }

  /**
   * An allocation we hold no `relay` for (lost, not yet arrived, or from before a restart): on a
   * relay's host and none of the peer's candidates (a device may run next to a relay).
   */
  isRelayAddress(endpoint: string): boolean {
    return this.isRelayHost(hostOf(endpoint)) && !this.known().some((c) => c.endpoint === endpoint);
  }

  setEndpoint(endpoint: string, keepalive: boolean): PathEffect {
    this.endpoint = endpoint;
    this.keepaliveOn = keepalive;
    return { type: 'set-endpoint', peerId: this.peerId, publicKey: this.publicKey, endpoint, keepalive };
  }

  /** Re-adds the peer at `endpoint`: WireGuard forgets its handshake state and initiates at once. */
  readd(endpoint: string): PathEffect {
    this.endpoint = endpoint;
    this.keepaliveOn = true; // a re-add sets it: the path is wanted
    return { type: 'readd-peer', peerId: this.peerId, publicKey: this.publicKey, endpoint };
  }

  keepalive(on: boolean): PathEffect[] {
    if (this.keepaliveOn === on) return [];
    this.keepaliveOn = on;
    return [{ type: 'keepalive', peerId: this.peerId, publicKey: this.publicKey, on }];
  }

  report(
    attemptId: string,
    result: PathReportMessage['result'],
    elapsedMs: number,
    endpoint?: string,
    kind?: PathReportMessage['kind'],
  ): PathEffect {
    const message: PathReportMessage = { type: 'path', peerId: this.peerId, attemptId, result, elapsedMs };
    if (endpoint !== undefined) message.endpoint = endpoint;
    if (kind !== undefined) message.kind = kind;
    return { type: 'send', message };
  }
}
