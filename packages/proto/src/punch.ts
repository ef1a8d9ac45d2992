import { z } from 'zod';
import { MAX_ENDPOINTS } from './api';
import { DeviceId, Endpoint, WgKey } from './common';
import { RelayRtts } from './relay';

/**
 * NAT traversal messages on the control channel (see ARCHITECTURE "Hole punching, coordinated by the
 * broker"). Broker → agent: `punch`. Agent → broker: `path` (outcome of an attempt) and `netinfo`
 * (its port mapping and relay round trips). Part of the ClientMessage/ServerMessage unions.
 */

/** Where a candidate comes from: an on-link address, a reflector's observation, a UPnP/PCP mapping, or an address the broker saw. */
export const CandidateKind = z.enum(['lan', 'reflexive', 'portmapped', 'observed']);
export type CandidateKind = z.infer<typeof CandidateKind>;

/** One way to reach a device. Higher priority is preferred (as in ICE). */
export const Candidate = z.object({
  endpoint: Endpoint,
  kind: CandidateKind,
  priority: z.number().int().nonnegative(),
});
export type Candidate = z.infer<typeof Candidate>;

export const MAX_PUNCH_CANDIDATES = MAX_ENDPOINTS * 2;
/** Longest a broker may give one candidate; longer would only delay the next one. */
export const MAX_PUNCH_DEADLINE_MS = 30_000;

/** Opaque id the broker picks per attempt; echoed in the `path` report. */
export const AttemptId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

// --- broker → agent ---------------------------------------------------------------------------
export const PunchMessage = z.object({
  type: z.literal('punch'),
  attemptId: AttemptId,
  peerId: DeviceId,
  peerPublicKey: WgKey,
  /** The peer's candidates, best first. */
  candidates: z.array(Candidate).min(1).max(MAX_PUNCH_CANDIDATES),
  /** When both sides point WireGuard at the first candidate, in the broker's clock (ms since epoch). */
  startAt: z.number(),
  /** How long each candidate gets to produce a fresh handshake before the next is tried. */
  deadlineMs: z.number().int().positive().max(MAX_PUNCH_DEADLINE_MS),
  /**
   * Whether this side leads (initiates after the follower and retries). Absent: the side whose key
   * sorts first. The broker makes the side behind a symmetric NAT lead when the other's is not:
   * only its packets can open the way, the other side cannot know its port.
   */
  leader: z.boolean().optional(),
});
export type PunchMessage = z.infer<typeof PunchMessage>;

// --- agent → broker ---------------------------------------------------------------------------
/** `relay`: the peer is reachable through the relay allocation the broker gave (after `relay`). */
export const PathResult = z.enum(['direct', 'failed', 'relay']);
export type PathResult = z.infer<typeof PathResult>;

/**
 * The outcome of a path attempt. `attemptId` is the punch's id, or an agent-made id for attempts the
 * agent started itself (`local:N`: backoff retry, stale path, network change, new candidates) and for
 * direct paths it noticed without an attempt (`observed:N`: the peer's handshake reached us).
 */
export const PathReportMessage = z.strictObject({
  type: z.literal('path'),
  peerId: DeviceId,
  attemptId: AttemptId,
  result: PathResult,
  /** With `direct`: the endpoint WireGuard uses for the peer, and what kind of candidate it is. */
  endpoint: Endpoint.optional(),
  kind: z.enum([...CandidateKind.options, 'relay']).optional(),
  /** From the attempt's start (or the first candidate's) to success or giving up. */
  elapsedMs: z.number().nonnegative(),
});
export type PathReportMessage = z.infer<typeof PathReportMessage>;

/**
 * The agent wants a path to a peer: WireGuard has packets for it (or the path it had died). The
 * broker keeps state only for pairs that are wanted, punched or relayed (ARCHITECTURE "Control plane").
 */
export const PathWantMessage = z.strictObject({
  type: z.literal('want-path'),
  peerId: DeviceId,
  /**
   * The agent reaches the peer through a relay allocation now: sent for such peers when the control
   * connection comes up, so a broker that restarted takes the pair up again (and adopts the
   * allocation its relay still holds) instead of letting it lapse.
   */
  relayed: z.boolean().optional(),
});
export type PathWantMessage = z.infer<typeof PathWantMessage>;

export const MappingType = z.enum(['endpoint-independent', 'endpoint-dependent', 'unknown']);
export type MappingType = z.infer<typeof MappingType>;

/**
 * What only the agent can tell the broker about its network. (Reflexive addresses and the mapping
 * type come from the reflectors: the broker has them already.)
 */
export const NetinfoMessage = z.strictObject({
  type: z.literal('netinfo'),
  /** An address the gateway forwards to us (UPnP-IGD / NAT-PMP / PCP); absent: none. */
  portMapped: Endpoint.optional(),
  /** Round trip to each relay of the netmap (relay id → ms), for the broker's relay choice. */
  relayRttMs: RelayRtts.optional(),
});
export type NetinfoMessage = z.infer<typeof NetinfoMessage>;
