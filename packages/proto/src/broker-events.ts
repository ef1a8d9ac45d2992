import { z } from 'zod';
import { KeyChange, MAX_DEVICE_TAGS, TagName } from './access';
import { MAX_ENDPOINTS } from './api';
import { ClusterEvents } from './cluster-events';
import { DeviceId, DnsLabel, Endpoint, PlainText, WgKey } from './common';
import { Ipv4 } from './ipv4';
import { Candidate, CandidateKind, MappingType } from './punch';
import { MAX_DEVICE_ROUTES, RoutePrefix } from './routes';
import { DevicePathsEvent } from './topology';
import { LanAddress } from './virtual';

/**
 * Broker ⇄ broker: the changes every broker instance applies to the netmaps it serves, fanned out
 * through PostgreSQL LISTEN/NOTIFY (ARCHITECTURE "Cross-instance fan-out"). One JSON object per
 * notification: the event with the version of its shape in `v`. A receiver decodes every payload
 * with decodeBrokerEvent and drops what does not parse (another version, a stray NOTIFY on the
 * channel, a truncated payload), so no payload can crash an instance.
 */

/** Bumped on any change to the events below; instances of different versions drop each other's events. */
export const BROKER_EVENT_VERSION = 5;
/** The PostgreSQL channel every broker instance LISTENs on for these events. */
export const NOTIFY_CHANNEL = 'trellis_netmap_events';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
export const MAX_BROKER_EVENT_BYTES = 7999;

const AccountId = z.string().uuid();
/** The account's netmap serial the change produced (grows by one per change, never goes back). */
const Serial = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** What a netmap needs to know about one device: the broker's view, from which peers and selves are built. */
export const DeviceState = z
  .strictObject({
    id: DeviceId,
    name: DnsLabel,
    /** Absent for a virtual device (it has `via` instead). */
    publicKey: WgKey.optional(),
    address: Ipv4,
    /** A virtual device: the gateway device that forwards to it, and its address on that LAN. */
    via: DeviceId.optional(),
    lanAddress: LanAddress.optional(),
    /** What the device reported (and the address its control connection came from), best first. */
    endpoints: z.array(Endpoint).max(MAX_ENDPOINTS),
    online: z.boolean(),
    /** Reflexive and port-mapped addresses the broker learned (absent: none); at most MAX_ENDPOINTS per kind. */
    learned: z
      .array(Candidate)
      .max(MAX_ENDPOINTS * CandidateKind.options.length)
      .optional(),
    mappingType: MappingType.nullable().optional(),
    /**
     * The control connection holding the device online (`<instance id>:<uuid>`; null or absent:
     * offline). A new one means the agent started over; its instance part picks the account's owner.
     */
    connection: z.string().min(1).max(128).nullable().optional(),
    /** Tags on the device, for the access policy (absent: none). */
    tags: z.array(TagName).max(MAX_DEVICE_TAGS).optional(),
    /** Email of the user the device belongs to (`user:EMAIL` in the policy); absent: nobody's. */
    user: PlainText(254).optional(),
    /** How its key last changed (peers that pinned the previous key check this). */
    keyChange: KeyChange.optional(),
    /** False: it waits for an admin's approval and is in no netmap (absent: approved). */
    approved: z.literal(false).optional(),
    /** Routes it advertises (absent: none): approved ones reach the netmap of devices that may use them. */
    routes: z
      .array(
        z.strictObject({
          prefix: RoutePrefix,
          approved: z.boolean(),
          /** When it first advertised the prefix (ms since the epoch): clients prefer the longest-serving. */
          since: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
          /** Its LAN for the prefix is down (AdvertiseMessage.down). */
          down: z.literal(true).optional(),
        }),
      )
      .max(MAX_DEVICE_ROUTES)
      .optional(),
  })
  .refine((d) => (d.publicKey === undefined) === (d.via !== undefined && d.lanAddress !== undefined), {
    message: 'a device has a publicKey, or (virtual) via and lanAddress, not both',
    path: ['publicKey'],
  });
export type DeviceState = z.infer<typeof DeviceState>;

/** A virtual device (a LAN host behind a gateway): no key, no connection, no endpoints of its own. */
export const isVirtual = (d: Pick<DeviceState, 'via'>): boolean => d.via !== undefined;

/** Whether a device belongs in netmaps, names and reflectors: not while it waits for approval. */
export const inMesh = (d: Pick<DeviceState, 'approved'>): boolean => d.approved !== false;

/** A device was added or changed: every instance updates its netmap and sends deltas. */
const DeviceUpsertEvent = z.strictObject({
  kind: z.literal('device-upsert'),
  accountId: AccountId,
  serial: Serial,
  device: DeviceState,
});
const DeviceRemoveEvent = z.strictObject({
  kind: z.literal('device-remove'),
  accountId: AccountId,
  serial: Serial,
  deviceId: DeviceId,
});
/** A device authenticated on `connectionId`; every other connection of it must close (replaced). */
const DeviceConnectedEvent = z.strictObject({
  kind: z.literal('device-connected'),
  accountId: AccountId,
  deviceId: DeviceId,
  /** `<instance id>:<uuid>`, made by the instance that holds the connection. */
  connectionId: z.string().min(1).max(128),
});

/** A new version of the account's access policy is in force: every instance reads it and re-filters its netmaps. */
const PolicyChangedEvent = z.strictObject({
  kind: z.literal('policy-changed'),
  accountId: AccountId,
  serial: Serial,
  version: z.number().int().positive(),
});

/** The account's mesh-only DNS switch changed: every instance's DNS server answers by it at once. */
const AccountDnsEvent = z.strictObject({
  kind: z.literal('account-dns'),
  accountId: AccountId,
  meshOnly: z.boolean(),
});

/** A change to an account's netmap, to who holds a device's control connection, or pair-path traffic between instances (cluster-events). */
export const BrokerEvent = z.discriminatedUnion('kind', [
  DeviceUpsertEvent,
  DeviceRemoveEvent,
  DeviceConnectedEvent,
  PolicyChangedEvent,
  AccountDnsEvent,
  DevicePathsEvent,
  ...ClusterEvents,
]);
export type BrokerEvent = z.infer<typeof BrokerEvent>;

/** Why a payload was dropped: the label of the broker's dropped-events counter. */
export type BrokerEventRejection = 'oversized' | 'bad_json' | 'version' | 'bad_event';

export type DecodedBrokerEvent =
  | { ok: true; event: BrokerEvent }
  | { ok: false; reason: BrokerEventRejection; error: string };

/**
 * The NOTIFY payload of an event. Throws when the event does not match its schema or is too large
 * for PostgreSQL: the publisher learns of it, instead of every instance dropping it on receipt.
 */
export function encodeBrokerEvent(event: BrokerEvent): string {
  const parsed = BrokerEvent.safeParse(event);
  if (!parsed.success) {
    throw new Error(`broker event ${event.kind} is invalid: ${describeIssue(parsed.error)}`);
  }
  const payload = JSON.stringify({ v: BROKER_EVENT_VERSION, ...parsed.data });
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_BROKER_EVENT_BYTES) {
    throw new Error(`broker event ${event.kind} is ${bytes} bytes, more than ${MAX_BROKER_EVENT_BYTES}`);
  }
  return payload;
}

/** The shape of events from brokers that sent no `v`. */
const UNVERSIONED_EVENT_VERSION = 1;

/** Strictly parses one NOTIFY payload; never throws. */
export function decodeBrokerEvent(payload: string): DecodedBrokerEvent {
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_BROKER_EVENT_BYTES) {
    return {
      ok: false,
      reason: 'oversized',
      error: `payload of ${bytes} bytes, more than ${MAX_BROKER_EVENT_BYTES}`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return { ok: false, reason: 'bad_json', error: 'payload is not valid JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, reason: 'bad_event', error: 'payload is not a JSON object' };
  }
  const { v: given, ...rest } = json as Record<string, unknown>;
  // Brokers from before the version field sent version 1's shape: a rolling upgrade keeps working.
  const v = given === undefined ? UNVERSIONED_EVENT_VERSION : given;
  if (v !== BROKER_EVENT_VERSION) {
    return {
      ok: false,
      reason: 'version',
      error: `event version ${JSON.stringify(v) ?? 'missing'} (this broker speaks ${BROKER_EVENT_VERSION})`,
    };
  }
  const parsed = BrokerEvent.safeParse(rest);
  if (!parsed.success) return { ok: false, reason: 'bad_event', error: describeIssue(parsed.error) };
  return { ok: true, event: parsed.data };
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join('.') || '(event)'}: ${issue?.message}`;
}
