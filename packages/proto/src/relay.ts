import { z } from 'zod';
import {
  DeviceId,
  DnsLabel,
  Endpoint,
  Host,
  PingMessage,
  PlainText,
  PongMessage,
  ReflectorInfo,
  WgKey,
} from './common';

/**
 * Relays (ARCHITECTURE "Relay by port allocation"). Three conversations:
 * - relay ⇄ broker control channel, a WebSocket at API_PATHS.relayControl: `relay-hello` (token,
 *   and how many allocations the relay holds, which follow in `relay-held` frames: a restarted broker
 *   adopts them) → `relay-welcome` (with every allocation the relay should hold: a restarted relay
 *   resumes them), then `allocate`/`release` from the broker and `allocated`/`bound`/`expired`/`load` back;
 * - broker → agent on the device control channel: `relay` (use this allocation for a peer) and
 *   `relay-release`;
 * - agent ⇄ relay TCP fallback, a WebSocket at `RelayTcpInfo.url` + allocation id: WireGuard packets
 *   in binary frames, both ways (RELAY_TCP_PATH; one per frame, or batched: relay-tcp-frames.ts).
 */

/** Relay tokens: `trl_` + 43 base64url characters (32 random bytes). Only the hash is stored. */
export const RelayToken = z.string().regex(/^trl_[A-Za-z0-9_-]{43}$/, 'must be a relay token (trl_…)');
export const RELAY_TOKEN_PREFIX = 'trl_';

/** Where agents blocked from UDP reach the relay: TLS WebSocket, certificate pinned by SHA-256. */
export const RelayTcpInfo = z.object({
  /** `wss://host:port` (no path); the agent appends RELAY_TCP_PATH and the allocation id. */
  url: z
    .string()
    .max(256)
    .regex(/^wss:\/\/[^/?#\s]+$/, 'must be wss://host[:port] without a path'),
  /** SHA-256 of the relay's TLS certificate (DER), hex with colons as `openssl x509 -fingerprint` prints it. */
  fingerprint: z
    .string()
    .regex(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/, 'must be an upper-case SHA-256 fingerprint'),
});
export type RelayTcpInfo = z.infer<typeof RelayTcpInfo>;

/** Path under the relay's TCP listener: `${RELAY_TCP_PATH}/<allocationId>` upgrades to a WebSocket. */
export const RELAY_TCP_PATH = '/v1/relay/tcp';
/** Answers 204 on the relay's TCP listener; agents time a request to it to rank relays. */
export const RELAY_PROBE_PATH = '/v1/probe';

export const PortRange = z
  .object({ first: z.number().int().min(1).max(65535), last: z.number().int().min(1).max(65535) })
  .refine((r) => r.first <= r.last, 'first must not exceed last');
export type PortRange = z.infer<typeof PortRange>;

export const AllocationId = z.string().uuid();

/** How a side of an allocation is bound: a UDP source address, or a TCP-fallback WebSocket. */
export const RelayBinding = z.discriminatedUnion('transport', [
  z.object({ transport: z.literal('udp'), endpoint: Endpoint }),
  z.object({ transport: z.literal('tcp') }),
]);
export type RelayBinding = z.infer<typeof RelayBinding>;

export const RelaySide = z.object({
  publicKey: WgKey,
  /** Known binding (on resume after a relay restart); null until a handshake binds it. */
  bound: RelayBinding.nullable(),
});
export type RelaySide = z.infer<typeof RelaySide>;

export const MAX_RELAY_IDLE_MS = 3_600_000;

export const RelayAllocation = z.object({
  allocationId: AllocationId,
  /** Rate limits are per account as well as per allocation. */
  accountId: z.string().min(1).max(64),
  /** The port to open (resume after a restart); null: the relay picks one from its range. */
  port: z.number().int().min(1).max(65535).nullable(),
  sides: z.tuple([RelaySide, RelaySide]),
  /** No packet forwarded for this long: the relay closes it and reports `expired`. */
  idleTimeoutMs: z.number().int().positive().max(MAX_RELAY_IDLE_MS),
});
export type RelayAllocation = z.infer<typeof RelayAllocation>;

/** The most allocations a relay can hold: one per UDP port. */
export const MAX_RELAY_ALLOCATIONS = 65_535;
/** Allocations per `relay-held` frame (~300 bytes each: well inside the broker's frame limit). */
export const MAX_HELD_PER_FRAME = 256;

/**
 * An allocation a relay holds, as it reports it when it connects: open on `port`, with the bindings
 * it has now. A broker that restarted (and so holds none) adopts the well-formed ones its token may
 * serve, so the pairs keep their relay and port; the others are left out of its welcome and closed.
 */
export const HeldAllocation = z.strictObject({
  allocationId: AllocationId,
  accountId: z.string().min(1).max(64),
  port: z.number().int().min(1).max(65535),
  sides: z.tuple([
    z.strictObject({ publicKey: WgKey, bound: RelayBinding.nullable() }),
    z.strictObject({ publicKey: WgKey, bound: RelayBinding.nullable() }),
  ]),
  idleTimeoutMs: z.number().int().positive().max(MAX_RELAY_IDLE_MS),
});
export type HeldAllocation = z.infer<typeof HeldAllocation>;

// --- relay → broker ---------------------------------------------------------------------------
export const RelayHelloMessage = z.strictObject({
  type: z.literal('relay-hello'),
  /** The relay's capability version (capability.ts); a broker serves MIN_CAPABILITY_VERSION and up. */
  protocolVersion: z.number().int(),
  token: RelayToken,
  name: DnsLabel,
  /** The address devices send UDP to (the relay may listen on a wildcard or behind a 1:1 NAT). */
  publicAddress: Host,
  ports: PortRange,
  tcp: RelayTcpInfo.optional(),
  /** The relay's own endpoint reflector (a second one for NAT classification), if it runs one. */
  reflector: ReflectorInfo.optional(),
  version: PlainText(64),
  /** How many allocations the relay holds; they follow in `relay-held` frames before the welcome. Absent: 0. */
  held: z.number().int().nonnegative().max(MAX_RELAY_ALLOCATIONS).optional(),
});
export type RelayHelloMessage = z.infer<typeof RelayHelloMessage>;

/** Right after the hello: the next allocations the relay holds, until `held` are reported. */
export const RelayHeldMessage = z.strictObject({
  type: z.literal('relay-held'),
  allocations: z.array(HeldAllocation).min(1).max(MAX_HELD_PER_FRAME),
});
export type RelayHeldMessage = z.infer<typeof RelayHeldMessage>;

export const AllocatedMessage = z.strictObject({
  type: z.literal('allocated'),
  allocationId: AllocationId,
  port: z.number().int().min(1).max(65535),
});
export const AllocateFailedMessage = z.strictObject({
  type: z.literal('allocate-failed'),
  allocationId: AllocationId,
  reason: PlainText(256),
});
/** A side bound (or re-bound by a newer valid handshake): the broker keeps it for a resume. */
export const BoundMessage = z.strictObject({
  type: z.literal('bound'),
  allocationId: AllocationId,
  publicKey: WgKey,
  binding: RelayBinding,
});
export const ExpiredMessage = z.strictObject({ type: z.literal('expired'), allocationId: AllocationId });
export const RelayLoadMessage = z.strictObject({
  type: z.literal('load'),
  allocations: z.number().int().nonnegative(),
  packetsPerSecond: z.number().nonnegative(),
  bytesPerSecond: z.number().nonnegative(),
  dropsPerSecond: z.number().nonnegative(),
});
export type RelayLoadMessage = z.infer<typeof RelayLoadMessage>;
/** What the relay's reflector saw: the broker keeps it for enrolled keys only. */
export const RelayObservedMessage = z.strictObject({
  type: z.literal('observed'),
  publicKey: WgKey,
  endpoint: Endpoint,
});

export const RelayClientMessage = z.discriminatedUnion('type', [
  RelayHelloMessage,
  RelayHeldMessage,
  AllocatedMessage,
  AllocateFailedMessage,
  BoundMessage,
  ExpiredMessage,
  RelayLoadMessage,
  PingMessage,
  RelayObservedMessage,
]);
export type RelayClientMessage = z.infer<typeof RelayClientMessage>;

// --- broker → relay ---------------------------------------------------------------------------
export const RelayWelcomeMessage = z.object({
  type: z.literal('relay-welcome'),
  relayId: z.string().uuid(),
  /** `account`: a private relay that serves only `accountName`'s devices. */
  scope: z.enum(['shared', 'account']),
  accountName: DnsLabel.optional(),
  /** Everything this relay should hold now; allocations it has but that are not listed are closed. */
  allocations: z.array(RelayAllocation),
  heartbeatIntervalMs: z.number().int().positive(),
  /** The broker's capability version (capability.ts). Absent: a broker of version 1. */
  capabilityVersion: z.number().int().positive().optional(),
});
export const AllocateMessage = z.object({ type: z.literal('allocate'), allocation: RelayAllocation });
export const ReleaseMessage = z.object({ type: z.literal('release'), allocationId: AllocationId });

export const RelayServerMessage = z.discriminatedUnion('type', [
  RelayWelcomeMessage,
  AllocateMessage,
  ReleaseMessage,
  PongMessage,
]);
export type RelayServerMessage = z.infer<typeof RelayServerMessage>;
export type RelayWelcomeMessage = z.infer<typeof RelayWelcomeMessage>;

/** Close codes of the relay control channel (beyond CloseCode's). */
export const RelayCloseCode = {
  badToken: 4401,
  revoked: 4403,
  replaced: 4409,
} as const;

// --- broker → agent ---------------------------------------------------------------------------
/** A relay an agent may be sent to; agents time RELAY_PROBE_PATH on it to rank relays. */
export const NetmapRelay = z.object({
  id: z.string().uuid(),
  name: DnsLabel,
  /** UDP address (host) of the relay: an IP address or a host name. */
  address: Host,
  tcp: RelayTcpInfo.optional(),
});
export type NetmapRelay = z.infer<typeof NetmapRelay>;

/**
 * Use a relay allocation for a peer: point its WireGuard endpoint at `endpoint` (UDP), or, with
 * `tcp`, at the agent's loopback proxy that carries the packets over the relay's WebSocket.
 */
export const RelayPathMessage = z.object({
  type: z.literal('relay'),
  peerId: DeviceId,
  peerPublicKey: WgKey,
  allocationId: AllocationId,
  relayId: z.string().uuid(),
  relayName: DnsLabel,
  endpoint: Endpoint,
  tcp: RelayTcpInfo.optional(),
});
export type RelayPathMessage = z.infer<typeof RelayPathMessage>;

export const RelayReleaseMessage = z.object({
  type: z.literal('relay-release'),
  peerId: DeviceId,
  allocationId: AllocationId,
});
export type RelayReleaseMessage = z.infer<typeof RelayReleaseMessage>;

/** What an agent measured to each relay (ms); part of `netinfo`. */
export const RelayRtts = z
  .record(z.string().uuid(), z.number().nonnegative())
  .refine((r) => Object.keys(r).length <= 32, 'at most 32 relays');

// --- admin: relay tokens and relays ------------------------------------------------------------
export const CreateRelayTokenRequest = z.strictObject({ name: z.string().min(1).max(128) });
export type CreateRelayTokenRequest = z.infer<typeof CreateRelayTokenRequest>;

export const RelayTokenInfo = z.object({
  id: z.string(),
  name: z.string(),
  /** The account whose private relay this is; null: an operator (shared) relay. */
  accountName: z.string().nullable(),
  prefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});
export type RelayTokenInfo = z.infer<typeof RelayTokenInfo>;

export const CreateRelayTokenResponse = z.object({ token: RelayToken, relayToken: RelayTokenInfo });
export type CreateRelayTokenResponse = z.infer<typeof CreateRelayTokenResponse>;

export const RelayStatusInfo = z.object({
  id: z.string(),
  name: z.string(),
  accountName: z.string().nullable(),
  publicAddress: z.string(),
  online: z.boolean(),
  allocations: z.number().int().nonnegative(),
  lastSeenAt: z.string().nullable(),
});
export type RelayStatusInfo = z.infer<typeof RelayStatusInfo>;
