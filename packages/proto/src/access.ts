import { z } from 'zod';
import { DeviceId, WgKey } from './common';
import { RoutePrefix } from './routes';

/**
 * What the access policy opens between two devices, as it travels in the netmap and as the
 * device's firewall takes it. Allow-only: a device accepts from a peer what its `in` rules name and
 * nothing else; replies to flows it started always pass.
 */
export const AccessProtocol = z.enum(['tcp', 'udp', 'icmp']);
export type AccessProtocol = z.infer<typeof AccessProtocol>;

export const PortNumber = z.number().int().min(1).max(65535);

/** Inclusive port range `[first, last]`; a single port is `[p, p]`. */
export const PortSpan = z
  .tuple([PortNumber, PortNumber])
  .refine(([a, b]) => a <= b, 'a port range must not end before it starts');
export type PortSpan = z.infer<typeof PortSpan>;

/** Most port spans one rule may carry (a policy's ports are merged into spans before they travel). */
export const MAX_ACCESS_SPANS = 256;

/**
 * One protocol and its ports. `proto` absent: every protocol (and every port). tcp/udp with no
 * `ports`: every port. icmp never has ports.
 */
export const AccessRule = z
  .strictObject({
    proto: AccessProtocol.optional(),
    ports: z.array(PortSpan).min(1).max(MAX_ACCESS_SPANS).optional(),
  })
  .refine((r) => r.ports === undefined || r.proto === 'tcp' || r.proto === 'udp', {
    message: 'only tcp and udp rules have ports',
  });
export type AccessRule = z.infer<typeof AccessRule>;

/** The rules of one direction; at most one per protocol plus one for "everything". */
export const AccessRules = z.array(AccessRule).max(4);
export type AccessRules = z.infer<typeof AccessRules>;

/**
 * Access between the netmap's owner and the listed peers: `in` is what those peers may open on this
 * device, `out` what this device may open on them. In a netmap snapshot the list covers every peer;
 * in a delta it replaces the access of the peers it lists.
 */
/**
 * What the policy opens on addresses inside `prefix` (a rule's destination prefix, or one of the
 * gateway's routes for `*`): on a client, what it may reach through the listed peers; on a
 * gateway, what the listed peers may reach through it. The gateway narrows it to the subnet routes
 * it serves. EXIT_ROUTE means the exit route alone (internet use), never the subnets it holds.
 */
export const RouteAccess = z.strictObject({
  prefix: RoutePrefix,
  rules: AccessRules,
});
export type RouteAccess = z.infer<typeof RouteAccess>;
export const RouteAccessList = z.array(RouteAccess).max(256);

export const PeerAccess = z.strictObject({
  peers: z.array(DeviceId).min(1).max(100_000),
  in: AccessRules,
  out: AccessRules,
  /** What this device may reach through those peers' routes (absent: nothing). */
  routesOut: RouteAccessList.optional(),
  /** What those peers may reach through this device's routes (absent: nothing). */
  routesIn: RouteAccessList.optional(),
});
export type PeerAccess = z.infer<typeof PeerAccess>;

/** Every protocol, every port: what the default allow-all policy opens. */
export const ALLOW_ALL: AccessRules = [{}];

/** A tag on a device (`tag:cams`): set by admins or by the setup key that enrolled it. */
export const TagName = z
  .string()
  .max(64)
  .regex(/^tag:[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be tag:NAME with NAME a-z, 0-9 and inner hyphens');
export type TagName = z.infer<typeof TagName>;

/** Most tags one device may carry. */
export const MAX_DEVICE_TAGS = 32;

/**
 * Why a device's key differs from the one it had: the proof its peers check against the key they
 * pinned. `rotated`: the device signed the new key with the old one (XEdDSA over
 * keyRotationMessage). `rekeyed`: an admin replaced the key of a device that lost it.
 */
export const KeyChange = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('rotated'),
    previousKey: WgKey,
    /** base64 of the 64-byte XEdDSA signature by previousKey. */
    signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be a base64 64-byte signature'),
  }),
  z.strictObject({
    kind: z.literal('rekeyed'),
    previousKey: WgKey,
    /** When the admin re-keyed it (ISO 8601). */
    at: z.string().datetime(),
  }),
]);
export type KeyChange = z.infer<typeof KeyChange>;

/** Rules for people: `all`, `none`, or `tcp 22,80-443; udp 53; icmp` (`tcp` alone: every tcp port). */
export function describeAccessRules(rules: AccessRules): string {
  if (rules.length === 0) return 'none';
  if (rules.some((r) => r.proto === undefined)) return 'all';
  const spans = (ports: readonly PortSpan[]) =>
    ports.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
  return rules.map((r) => (r.ports ? `${r.proto} ${spans(r.ports)}` : `${r.proto}`)).join('; ');
}
