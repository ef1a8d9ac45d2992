import { z } from 'zod';
import { DeviceId, DnsLabel, Endpoint, ReflectorInfo, WgKey } from './common';
import { PathReportMessage, PunchMessage } from './punch';
import { AllocationId, RelayPathMessage, RelayReleaseMessage, RelaySide, RelayTcpInfo } from './relay';

/**
 * Broker ⇄ broker, for pairs split across instances (ARCHITECTURE "Control plane"). One instance
 * decides an account's pair paths: its owner, the instance with the lowest id among those holding
 * a connected device of the account. The others forward what their devices tell them about paths
 * (`pair-input`) and deliver what the owner sends to their devices (`device-frame`). Relays are
 * connected to one instance each; the others see them (`relay-present`/`relay-gone`) and ask their
 * instance for allocations (`relay-request` → `relay-reply`).
 */

/** Instance ids: 12 hex digits (broker.ts). */
export const InstanceId = z.string().regex(/^[0-9a-f]{12}$/, 'must be an instance id');
const AccountId = z.string().uuid();
const RelayId = z.string().uuid();
const RequestId = z.string().regex(/^[0-9a-f]{16}$/, 'must be a request id');
const Keys = z.tuple([WgKey, WgKey]);

/** What a device's agent said about paths, for the account's owner. */
export const PairInput = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('want'),
    from: DeviceId,
    peerId: DeviceId,
    relayed: z.boolean(),
  }),
  z.strictObject({ kind: z.literal('path-report'), from: DeviceId, report: PathReportMessage }),
  /** Every endpoint the sender's reflectors saw the device at since it came online there. */
  z.strictObject({
    kind: z.literal('reflexive-seen'),
    id: DeviceId,
    endpoints: z.array(z.string().max(64)).min(1).max(16),
  }),
]);
export type PairInput = z.infer<typeof PairInput>;

const PairInputEvent = z.strictObject({
  kind: z.literal('pair-input'),
  accountId: AccountId,
  input: PairInput,
});

/**
 * An instance became the owner of an account's pair paths: the others tell it what their reflectors
 * saw and which peers their devices reach through a relay (`want` inputs with `relayed`).
 */
const PathsOwnerEvent = z.strictObject({
  kind: z.literal('paths-owner'),
  accountId: AccountId,
  instance: InstanceId,
});

/** A frame the account's owner sends a device held by another instance. */
export const DeviceFrame = z.discriminatedUnion('type', [
  PunchMessage,
  RelayPathMessage,
  RelayReleaseMessage,
]);
export type DeviceFrame = z.infer<typeof DeviceFrame>;

const DeviceFrameEvent = z.strictObject({
  kind: z.literal('device-frame'),
  accountId: AccountId,
  deviceId: DeviceId,
  frame: DeviceFrame,
});

/** A relay as another instance sees it. */
export const ClusterRelay = z.strictObject({
  id: RelayId,
  name: DnsLabel,
  accountId: AccountId.nullable(),
  publicAddress: z.string().max(64),
  tcp: RelayTcpInfo.optional(),
  /** Its endpoint reflector: a shared relay's classifies NATs for brokers with a single address. */
  reflector: ReflectorInfo.optional(),
});
export type ClusterRelay = z.infer<typeof ClusterRelay>;

const RelayPresentEvent = z.strictObject({
  kind: z.literal('relay-present'),
  instance: InstanceId,
  relay: ClusterRelay,
  allocations: z.number().int().nonnegative(),
});
const RelayGoneEvent = z.strictObject({
  kind: z.literal('relay-gone'),
  instance: InstanceId,
  relayId: RelayId,
});
/** A shared relay's reflector saw a device key (every instance classifies NATs with it). */
const RelayObservedEvent = z.strictObject({
  kind: z.literal('relay-observed'),
  instance: InstanceId,
  relayId: RelayId,
  publicKey: WgKey,
  endpoint: Endpoint,
});
/** A starting instance asks the others to announce their relays. */
const RelaySyncEvent = z.strictObject({ kind: z.literal('relay-sync'), instance: InstanceId });

export const RelayRequest = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('allocate'),
    relayId: RelayId,
    accountId: AccountId,
    keys: Keys,
    idleTimeoutMs: z.number().int().positive().max(3_600_000),
  }),
  /** An allocation a relay there holds for these keys, which the account's new owner takes over (or null). */
  z.strictObject({
    op: z.literal('claim'),
    accountId: AccountId,
    keys: Keys,
    exclude: z.array(RelayId).max(64),
  }),
  z.strictObject({ op: z.literal('release'), allocationId: AllocationId }),
]);
export type RelayRequest = z.infer<typeof RelayRequest>;

const RelayRequestEvent = z.strictObject({
  kind: z.literal('relay-request'),
  to: InstanceId,
  from: InstanceId,
  requestId: RequestId,
  request: RelayRequest,
});

export const ClusterAllocation = z.strictObject({
  allocationId: AllocationId,
  relayId: RelayId,
  accountId: AccountId,
  port: z.number().int().min(1).max(65535),
  sides: z.tuple([RelaySide, RelaySide]),
});

const RelayReplyEvent = z.strictObject({
  kind: z.literal('relay-reply'),
  to: InstanceId,
  requestId: RequestId,
  result: z.discriminatedUnion('ok', [
    z.strictObject({ ok: z.literal(true), record: ClusterAllocation.nullable() }),
    z.strictObject({ ok: z.literal(false), error: z.string().max(512) }),
  ]),
});

/** The relay closed an idle allocation: the account's owner forgets it. */
const RelayExpiredEvent = z.strictObject({
  kind: z.literal('relay-expired'),
  instance: InstanceId,
  allocationId: AllocationId,
});

/** A dead instance was taken over (its lease expired): the others forget its relays unless they reappear. */
const InstanceGoneEvent = z.strictObject({ kind: z.literal('instance-gone'), instance: InstanceId });

export const ClusterEvents = [
  InstanceGoneEvent,
  PathsOwnerEvent,
  PairInputEvent,
  DeviceFrameEvent,
  RelayPresentEvent,
  RelayGoneEvent,
  RelayObservedEvent,
  RelaySyncEvent,
  RelayRequestEvent,
  RelayReplyEvent,
  RelayExpiredEvent,
] as const;
