import { z } from 'zod';
import { DeviceId, DnsLabel } from './common';
import { Ipv4 } from './ipv4';

/**
 * The live topology: which path each device uses to each peer. Only the agents know it (their path
 * machines see WireGuard's handshakes; the broker only coordinates attempts), so each agent reports
 * its peers' current paths (`path-state`, on change, coalesced, and in full after each connect); the
 * instance holding the connection checks the peers against the device's netmap and fans the report
 * out to every instance (`device-paths` on the bus), where dashboards read it (API_PATHS.topology)
 * and are told of changes (DASHBOARD_EVENTS.path).
 */

/** `none`: no path in use (dormant, backing off, no candidates): no edge. */
export const PeerPathKind = z.enum(['direct', 'relayed', 'connecting', 'none']);
export type PeerPathKind = z.infer<typeof PeerPathKind>;

/** At most this many peers per `path-state` (a larger netmap reports in several): one fits a NOTIFY. */
export const MAX_PATH_STATES = 40;
/** A path older than this is reported as this old (a `since` needs no more). */
export const MAX_PATH_AGE_MS = 365 * 24 * 3600 * 1000;

/** One peer's path as its agent sees it now. */
export const PeerPathState = z.strictObject({
  peerId: DeviceId,
  path: PeerPathKind,
  /** With `relayed`: the relay's name (from the netmap's relays). */
  relay: DnsLabel.optional(),
  /** How long the path has been what it is (relative: the agent's clock may be off). */
  forMs: z.number().int().nonnegative().max(MAX_PATH_AGE_MS),
});
export type PeerPathState = z.infer<typeof PeerPathState>;

/** Agent → broker: its peers' paths that changed since its last report (`full`: all of them). */
export const PathStateMessage = z.strictObject({
  type: z.literal('path-state'),
  /**
   * The first report of a connection: replaces everything the broker holds from this device (peers
   * not listed have no path). A netmap of more than MAX_PATH_STATES peers sends the rest unflagged.
   */
  full: z.boolean().optional(),
  paths: z.array(PeerPathState).max(MAX_PATH_STATES),
});
export type PathStateMessage = z.infer<typeof PathStateMessage>;

/** Broker ⇄ broker: a device's checked path report; `at` is the receiving broker's clock (ms). */
export const DevicePathsEvent = z.strictObject({
  kind: z.literal('device-paths'),
  accountId: z.string().uuid(),
  deviceId: DeviceId,
  full: z.boolean(),
  paths: z.array(PeerPathState).max(MAX_PATH_STATES),
  at: z.number().int().nonnegative(),
});
export type DevicePathsEvent = z.infer<typeof DevicePathsEvent>;

// --- dashboard ---------------------------------------------------------------------------------
export const TopologyEdgeKind = z.enum(['direct', 'relayed', 'connecting']);
export type TopologyEdgeKind = z.infer<typeof TopologyEdgeKind>;

export const TopologyNode = z.object({
  id: DeviceId,
  name: DnsLabel,
  address: Ipv4,
  online: z.boolean(),
  /** Email of the user it belongs to; null: nobody's, or not the viewer's to know (`peerOnly`). */
  owner: z.string().nullable(),
  /** A member's view of another user's device: shown only as the far end of their own devices' paths. */
  peerOnly: z.boolean(),
});
export type TopologyNode = z.infer<typeof TopologyNode>;

/** The path between two devices (`a` sorts before `b`), as their agents report it. */
export const TopologyEdge = z.object({
  a: DeviceId,
  b: DeviceId,
  kind: TopologyEdgeKind,
  /** With `relayed`: the relay's name. */
  relay: z.string().nullable(),
  /** Since when the path has been of this kind (ISO time). */
  since: z.string(),
});
export type TopologyEdge = z.infer<typeof TopologyEdge>;

/** GET API_PATHS.topology: the devices the user may see, and the paths touching them. */
export const TopologyResponse = z.object({
  nodes: z.array(TopologyNode),
  edges: z.array(TopologyEdge),
});
export type TopologyResponse = z.infer<typeof TopologyResponse>;

/** Server-sent DASHBOARD_EVENTS.path: edges that appeared or changed, and pairs with no path any more. */
export const PathChangedEvent = z.object({
  edges: z.array(TopologyEdge),
  gone: z.array(z.object({ a: DeviceId, b: DeviceId })),
});
export type PathChangedEvent = z.infer<typeof PathChangedEvent>;
