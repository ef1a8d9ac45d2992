import type { CandidateKind, PathReportMessage, PathWantMessage } from '@trellis/proto';
import type { PathKind } from './candidates';

/** What the path logic asks the caller to do; the caller maps each to WireGuard UAPI or the control channel. */
export type PathEffect =
  /**
   * Point the peer at `endpoint` without disturbing its session (UAPI: `public_key=`, `endpoint=`),
   * with persistent keepalive on or off (on sends an initiation at once when there is no session).
   */
  | { type: 'set-endpoint'; peerId: string; publicKey: string; endpoint: string; keepalive: boolean }
  /**
   * Remove and re-add the peer with `endpoint` (and its allowed IPs and persistent keepalive), so
   * WireGuard forgets its handshake state and sends a fresh initiation at once instead of waiting 5 s.
   */
  | { type: 'readd-peer'; peerId: string; publicKey: string; endpoint: string }
  /** Persistent keepalive on (a path in use: NAT mappings stay open) or off (dormant), endpoint unchanged. */
  | { type: 'keepalive'; peerId: string; publicKey: string; on: boolean }
  /** Send this report or want to the broker. */
  | { type: 'send'; message: PathReportMessage | PathWantMessage }
  /** Call `tick` (after feeding fresh handshake observations) at this local time; replaces earlier ones. */
  | { type: 'schedule-tick'; at: number };

export type PathPhase =
  /** No candidates, nothing to do. */
  | 'idle'
  /**
   * No path in use and none wanted: WireGuard has the peer at its best candidate (or the relay) with
   * no persistent keepalive; packets for the peer (tx growing without a handshake) wake it.
   */
  | 'dormant'
  /** A punch is waiting for its start time. */
  | 'scheduled'
  /** Trying candidates one by one. */
  | 'probing'
  /** A candidate produced a handshake; kept while handshakes stay fresh. (A relay is used in the other phases.) */
  | 'direct'
  /** Every candidate failed; waiting to retry. */
  | 'backoff';

/** One peer's path, for `trellis status`. Times are local ms since the epoch. */
export interface PeerPathStatus {
  peerId: string;
  publicKey: string;
  path: PathKind;
  endpoint: string | null;
  kind: CandidateKind | null;
  /** With path `relay`: the relay's name. */
  relayName: string | null;
  /** Since when `path` has had its current value. */
  since: number;
  phase: PathPhase;
  attemptId: string | null;
  /** Latest handshake seen (0: none). */
  lastHandshakeMs: number;
  /** Failed attempts in a row. */
  failures: number;
}

export interface PathTimings {
  /**
   * In a punch the follower initiates at the start and the leader this much later: initiations that
   * cross make each side consume the other's and drop the response (both fail). The follower's
   * packet opens its NAT for the leader's; if it got through on its own, the handshake is already done.
   */
  leaderDelayMs: number;
  /** First re-add after a candidate's start (leader); WireGuard would otherwise wait 5 s to resend. */
  retryIntervalMs: number;
  /** Each further retry waits this factor longer, so a slow path gets a window longer than its RTT. */
  retryGrowth: number;
  /** Per-candidate deadline for attempts the agent starts itself (punches carry their own). */
  localDeadlineMs: number;
  /** Cap on that deadline while a relay is available: traffic through the relay stops while we try. */
  relayedDeadlineMs: number;
  /** How long after pointing WireGuard at a relay to poll fast (and, as leader, re-add) for a handshake. */
  relayConfirmMs: number;
  /** Cap on a LAN candidate's deadline: LAN round trips are a few ms, and a miss delays the internet path. */
  lanDeadlineMs: number;
  /** How often to look at handshakes while an attempt runs. */
  probePollMs: number;
  /** How often to look at handshakes otherwise (passive detection, roaming, freshness). */
  idlePollMs: number;
  /** A direct path with no handshake for this long is dead (WireGuard re-handshakes every 2 min). */
  staleAfterMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A punch start further ahead than this is clamped (a bad clock offset must not stall us). */
  maxStartDelayMs: number;
  /**
   * A path in use (direct or relayed) with no traffic beyond keepalives and handshakes (see
   * TrafficMeter) for this long goes dormant.
   */
  idleAfterMs: number;
  /** How often to read a dormant peer's counters (the latency of noticing demand). */
  dormantPollMs: number;
  /** While demand has no path, `want-path` is sent again after this, doubling up to wantMaxMs. */
  wantInitialMs: number;
  wantMaxMs: number;
  /** Resolution of the handshake times the caller feeds (UAPI seconds: 1000; with nsec: 1). */
  handshakeResolutionMs: number;
}

export const DEFAULT_PATH_TIMINGS: PathTimings = {
  leaderDelayMs: 50,
  retryIntervalMs: 200,
  retryGrowth: 1.5,
  localDeadlineMs: 1000,
  relayedDeadlineMs: 600,
  relayConfirmMs: 5000,
  lanDeadlineMs: 300,
  probePollMs: 25,
  idlePollMs: 10_000,
  staleAfterMs: 180_000,
  backoffInitialMs: 5_000,
  backoffMaxMs: 300_000,
  maxStartDelayMs: 10_000,
  handshakeResolutionMs: 1000,
  idleAfterMs: 180_000,
  dormantPollMs: 250,
  wantInitialMs: 2_000,
  wantMaxMs: 60_000,
};
