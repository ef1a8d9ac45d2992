import { z } from 'zod';
import { KeyChange, PeerAccess } from './access';
import { MAX_ENDPOINTS } from './api';
import {
  DeviceId,
  DnsLabel,
  DnsName,
  Endpoint,
  PingMessage,
  PongMessage,
  ReflectorInfo,
  WgKey,
} from './common';
import { OVERLAY_PREFIX, OverlayAddress, OverlayCidr } from './ipv4';
import {
  Candidate,
  MappingType,
  NetinfoMessage,
  PathReportMessage,
  PathWantMessage,
  PunchMessage,
} from './punch';
import { NetmapRelay, RelayPathMessage, RelayReleaseMessage } from './relay';
import { AdvertiseMessage, MAX_DEVICE_ROUTES, PeerRoute, SelfRoute } from './routes';
import { PathStateMessage } from './topology';
import { HostedVirtual, MAX_VIRTUAL_DEVICES_PER_GATEWAY, NetmapVirtual } from './virtual';

/**
 * The WebSocket control channel (API_PATHS.control). Every frame is one JSON object with a `type`.
 * Sequence: client `hello` → broker `challenge` → client `auth` → broker `netmap` (full snapshot),
 * then `delta`s whose serial grows by one per frame; `ping`/`pong` in both directions keep it alive.
 * A reconnecting agent that holds a netmap sends its `resume` token and serial; the broker may answer
 * with a `delta` on top of that netmap (its `base`) instead of a snapshot.
 */
export const MAX_CONTROL_FRAME_BYTES = 256 * 1024;
/** A device that does not finish authentication within this time is closed with AUTH_TIMEOUT. */
export const AUTH_TIMEOUT_MS = 10_000;
/**
 * Once the broker has proved itself (challenge), how long the agent waits for its snapshot. A broker
 * in a reconnection storm is working through a queue; agents that gave up after the 10 s above made
 * it start over for each of them, and 1,000 devices failing over never got back (bench failover).
 */
export const SNAPSHOT_TIMEOUT_MS = 60_000;
/** Agents send a ping this often; the broker closes a connection that is silent for 3 intervals. */
export const HEARTBEAT_INTERVAL_MS = 15_000;

export const CloseCode = {
  normal: 1000,
  badMessage: 4400,
  authFailed: 4401,
  deviceRemoved: 4403,
  authTimeout: 4408,
  replaced: 4409,
  protocolMismatch: 4426,
  heartbeatTimeout: 4410,
  /** More control messages than the broker's per-connection budget (agents reconnect after a backoff). */
  rateLimited: 4429,
  /** An admin replaced the device's key (re-key): this connection authenticated with the old one. */
  keyChanged: 4412,
  /** A `rotate-key` the broker refused (bad signature, key of another device); nothing changed. */
  rotationRefused: 4422,
  /** The account requires an admin's approval of new devices and this one has none yet (agents retry). */
  pendingApproval: 4423,
} as const;

/**
 * Where a device's netmap stands, as the broker wrote it into its last frame (opaque to the agent).
 * Only a hint: a token the broker cannot use (another policy, a change it no longer remembers, junk)
 * gets a snapshot, and what a delta holds is filtered for the device whatever the token says.
 */
export const ResumeToken = z.string().regex(/^[\x21-\x7e]{1,64}$/, 'must be 1-64 printable characters');

const Nonce = z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes of base64');
const Mac = Nonce;

/**
 * What the broker tells a device is checked as strictly as what the device tells the broker: the
 * agent routes the overlay prefix and each peer's allowed IPs into WireGuard and writes names into
 * WireGuard's and the resolver's configuration, so a value outside the overlay or with a control
 * character in it is refused (the whole frame; the connection is dropped and nothing is applied).
 */
export const NetmapSelf = z.object({
  id: DeviceId,
  name: DnsLabel,
  dnsName: DnsName,
  address: OverlayAddress,
  accountName: DnsLabel,
  /** Always OVERLAY_PREFIX: the only prefix a device routes into the mesh. */
  overlayPrefix: z.literal(OVERLAY_PREFIX),
  /** The broker's endpoint reflectors (one, or two on different IPs to classify the NAT). */
  reflectors: z.array(ReflectorInfo).max(4).optional(),
  /** What the reflectors saw of this device: its reflexive addresses and NAT mapping. */
  reflexive: z.array(Endpoint).max(MAX_ENDPOINTS).optional(),
  mappingType: MappingType.optional(),
  /** Relays this device may be sent to (its account's private ones, else the shared ones). */
  relays: z.array(NetmapRelay).max(32).optional(),
  /** The routes this device advertised, as the broker holds them (absent: none). */
  routes: z.array(SelfRoute).max(MAX_DEVICE_ROUTES).optional(),
  /** Virtual devices this device serves as their gateway, with who may open what on each (absent: none). */
  virtualDevices: z.array(HostedVirtual).max(MAX_VIRTUAL_DEVICES_PER_GATEWAY).optional(),
});
export type NetmapSelf = z.infer<typeof NetmapSelf>;

export const NetmapPeer = z.object({
  id: DeviceId,
  name: DnsLabel,
  dnsName: DnsName,
  publicKey: WgKey,
  address: OverlayAddress,
  /** CIDRs routed to this peer through WireGuard (inside the overlay); today only its own /32. */
  allowedIps: z.array(OverlayCidr).max(256),
  /** Candidate endpoints, best first. */
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS * 2),
  /** The same addresses typed (LAN, reflexive, port-mapped, observed), best first. */
  candidates: z
    .array(Candidate)
    .max(MAX_ENDPOINTS * 2)
    .optional(),
  online: z.boolean(),
  /** How its key last changed, for peers that pinned the previous one (absent: never changed). */
  keyChange: KeyChange.optional(),
  /**
   * Prefixes it forwards to (approved, advertised, up; EXIT_ROUTE: an exit node). Never in
   * allowedIps: the agent routes a prefix to the one gateway it picks for it (PeerRoute).
   */
  routes: z.array(PeerRoute).max(MAX_DEVICE_ROUTES).optional(),
});
export type NetmapPeer = z.infer<typeof NetmapPeer>;

// --- client → broker ---------------------------------------------------------------------------
export const HelloMessage = z.strictObject({
  type: z.literal('hello'),
  /** The agent's capability version (capability.ts); a broker serves MIN_CAPABILITY_VERSION and up. */
  protocolVersion: z.number().int(),
  deviceId: DeviceId,
  publicKey: WgKey,
  clientNonce: Nonce,
  /** Serial of the netmap the agent holds (the broker's frames stay above it). */
  lastSerial: z.number().int().nonnegative().optional(),
  /** The `resume` of the last netmap or delta applied to that netmap: asks for a delta from there. */
  resume: ResumeToken.optional(),
});
export const AuthMessage = z.strictObject({ type: z.literal('auth'), proof: Mac });
export const EndpointsMessage = z.strictObject({
  type: z.literal('endpoints'),
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS),
});

/**
 * The device replaces its WireGuard key: `signature` is the XEdDSA signature by the current key over
 * keyRotationMessage({deviceId, address, previousKey: current key, newKey}) (@trellis/crypto). The
 * broker answers `key-rotated` once the new key is committed, or closes with rotationRefused and
 * changes nothing. The connection stays authenticated with the old key: the agent reconnects.
 */
export const RotateKeyMessage = z.strictObject({
  type: z.literal('rotate-key'),
  newKey: WgKey,
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be a base64 64-byte signature'),
});
export type RotateKeyMessage = z.infer<typeof RotateKeyMessage>;

export const ClientMessage = z.discriminatedUnion('type', [
  HelloMessage,
  AuthMessage,
  EndpointsMessage,
  RotateKeyMessage,
  PingMessage,
  PathReportMessage,
  PathWantMessage,
  NetinfoMessage,
  PathStateMessage,
  AdvertiseMessage,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type HelloMessage = z.infer<typeof HelloMessage>;

// --- broker → client ---------------------------------------------------------------------------
export const ChallengeMessage = z.object({
  type: z.literal('challenge'),
  brokerNonce: Nonce,
  /** Proves the broker holds its static key (see @trellis/crypto controlAuth). */
  brokerProof: Mac,
  /**
   * Client messages this broker takes beyond the first protocol (BROKER_FEATURES), so a newer agent
   * sends none that an older broker would refuse (closing the connection). Absent: none.
   */
  features: z.array(z.string().max(32)).max(16).optional(),
  /** The broker's capability version (capability.ts). Absent: a broker of version 1. */
  capabilityVersion: z.number().int().positive().optional(),
});

/**
 * What ChallengeMessage.features may name: `path-state` (the agent's peer paths, for the topology),
 * `routes` (the agent's `advertise`: subnet routes and exit node).
 */
export const BROKER_FEATURES = { pathState: 'path-state', routes: 'routes' } as const;
export const NetmapMessage = z.object({
  type: z.literal('netmap'),
  serial: z.number().int().nonnegative(),
  /** Sent back as hello.resume on the next connection (absent: this netmap cannot be resumed). */
  resume: ResumeToken.optional(),
  self: NetmapSelf,
  peers: z.array(NetmapPeer),
  /** What the policy opens between this device and each peer; a peer listed nowhere gets nothing. */
  access: z.array(PeerAccess).max(100_000),
  /**
   * Virtual devices it may see (absent: none), each behind a peer of `peers`; their access is in
   * `access` under their ids. A gateway may find its own here (when the policy relates them); it
   * serves those from self.virtualDevices.
   */
  virtual: z.array(NetmapVirtual).max(100_000).optional(),
});
export const DeltaMessage = z.object({
  type: z.literal('delta'),
  serial: z.number().int().nonnegative(),
  /**
   * The first frame of a resumed connection: applies to the netmap of this serial (the hello's
   * lastSerial), not to serial − 1.
   */
  base: z.number().int().nonnegative().optional(),
  /** As NetmapMessage.resume; a delta without one leaves the netmap without a token. */
  resume: ResumeToken.optional(),
  /** Peers added or changed, whole; a peer absent from both lists is unchanged. */
  upsert: z.array(NetmapPeer),
  remove: z.array(DeviceId),
  self: NetmapSelf.optional(),
  /** Replaces the access of the peers it lists; a removed peer's access goes with it. */
  access: z.array(PeerAccess).max(100_000).optional(),
  /** Virtual devices added or changed, whole; `remove` removes them as it removes peers. */
  virtualUpsert: z.array(NetmapVirtual).max(100_000).optional(),
  /**
   * Capability 3: peers whose only change is that they came online / went offline, listed instead
   * of upserted whole (a reconnection storm flips thousands at once).
   */
  online: z.array(DeviceId).max(1_000_000).optional(),
  offline: z.array(DeviceId).max(1_000_000).optional(),
});

/** The broker committed a `rotate-key`: `newKey` is the device's key from now on. */
export const KeyRotatedMessage = z.object({ type: z.literal('key-rotated'), newKey: WgKey });
export type KeyRotatedMessage = z.infer<typeof KeyRotatedMessage>;

export const ServerMessage = z.discriminatedUnion('type', [
  ChallengeMessage,
  NetmapMessage,
  DeltaMessage,
  KeyRotatedMessage,
  PongMessage,
  PunchMessage,
  RelayPathMessage,
  RelayReleaseMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ChallengeMessage = z.infer<typeof ChallengeMessage>;
export type NetmapMessage = z.infer<typeof NetmapMessage>;
export type DeltaMessage = z.infer<typeof DeltaMessage>;
