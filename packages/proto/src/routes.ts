import { z } from 'zod';
import { ipv4CidrWithin, ipv4InCidr, OVERLAY_PREFIX, parseIpv4Cidr } from './ipv4';

/**
 * Gateways (issue 14): a device advertises IPv4 prefixes it can forward to (its LAN: subnet
 * routes; the internet: the exit route 0.0.0.0/0); an admin or the policy's auto-approvers approve
 * them; devices the policy lets reach a prefix get the gateway's routes in its netmap entry and pick,
 * per prefix, the most preferred gateway whose tunnel is alive.
 */

/** The route an exit node advertises: everything. Clients use it only when a user chose the node. */
export const EXIT_ROUTE = '0.0.0.0/0';
/** Most prefixes one device may advertise. */
/**
 * Most prefixes one device may advertise. A device's routes travel in its DeviceState in every
 * broker-to-broker event, which PostgreSQL caps at 7,999 bytes: 32 routes fit beside the most
 * endpoints and learned addresses a broker keeps (broker-events test).
 */
export const MAX_DEVICE_ROUTES = 32;

const maskOf = (bits: number) => (bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0);

/** The shortest subnet route: anything broader is most of the internet, which only an exit node carries. */
export const MIN_SUBNET_BITS = 8;

/** Ranges no gateway may route: "this network", loopback, link-local, multicast and reserved. */
export const SPECIAL_RANGES = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4'];

/**
 * Private, shared (CGNAT, the overlay) and link-local ranges: never the internet. An exit node does
 * not forward there, and `autogroup:internet` does not cover them.
 */
export const PRIVATE_RANGES = [
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '169.254.0.0/16',
];

/** Whether `address` is on the internet as an exit node reaches it: outside the private and special ranges. */
export function onInternet(address: string): boolean {
  return ![...PRIVATE_RANGES, ...SPECIAL_RANGES].some((r) => ipv4InCidr(address, r));
}

/**
 * Why `s` is not a prefix a gateway may carry (canonical IPv4 `a.b.c.d/n`: no leading zeros, host
 * bits clear; /8 or longer; outside the overlay and the special ranges; or exactly the exit route);
 * null when it is.
 */
export function routePrefixProblem(s: string): string | null {
  const c = parseIpv4Cidr(s);
  if (c === null || !/\/(0|[1-9]\d?)$/.test(s)) return 'must be an IPv4 prefix a.b.c.d/n';
  if ((c.base & maskOf(c.bits)) >>> 0 !== c.base) return 'must have its host bits clear';
  if (c.bits === 0) return s === EXIT_ROUTE ? null : 'must be written 0.0.0.0/0';
  if (c.bits < MIN_SUBNET_BITS) {
    return `must be /${MIN_SUBNET_BITS} or longer (the whole internet is an exit node's: 0.0.0.0/0)`;
  }
  if (ipv4CidrWithin(s, OVERLAY_PREFIX) || ipv4CidrWithin(OVERLAY_PREFIX, s)) {
    return `must not overlap the overlay ${OVERLAY_PREFIX}`;
  }
  const special = SPECIAL_RANGES.find((r) => ipv4CidrWithin(s, r) || ipv4CidrWithin(r, s));
  if (special) return `must not overlap ${special} (not routable through a gateway)`;
  return null;
}

/** A prefix a gateway forwards to: canonical (host bits clear), outside the overlay; 0.0.0.0/0 is the exit route. */
export const RoutePrefix = z
  .string()
  .max(18)
  .superRefine((s, ctx) => {
    const problem = routePrefixProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
export type RoutePrefix = z.infer<typeof RoutePrefix>;

/** A subnet route: a RoutePrefix that is not the exit route. */
export const SubnetRoute = RoutePrefix.refine((s) => s !== EXIT_ROUTE, 'a default route is an exit node');

/**
 * client → broker, once the broker's challenge lists BROKER_FEATURES.routes: what this device
 * offers to forward, sent after every (re)connection and whenever it changes. Replaces what it
 * advertised before (an empty list withdraws everything).
 */
export const AdvertiseMessage = z.strictObject({
  type: z.literal('advertise'),
  /** Subnet routes, and EXIT_ROUTE for an exit node. */
  routes: z.array(RoutePrefix).max(MAX_DEVICE_ROUTES),
  /**
   * Advertised routes this device cannot forward right now (its LAN interface is down): clients
   * fail over to another gateway of the prefix until it is up again.
   */
  down: z.array(RoutePrefix).max(MAX_DEVICE_ROUTES).optional(),
});
export type AdvertiseMessage = z.infer<typeof AdvertiseMessage>;

/**
 * A route a peer serves, in the netmap: approved, advertised and not down. Clients prefer the
 * gateway that has served the prefix longest (lowest `since`, then lowest device id), so every client
 * picks the same primary and traffic goes back to it when it returns.
 */
export const PeerRoute = z.strictObject({
  prefix: RoutePrefix,
  /** When the gateway first advertised this prefix (ms since the epoch). */
  since: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});
export type PeerRoute = z.infer<typeof PeerRoute>;

/** One of the device's own advertised routes as the broker holds it (NetmapSelf.routes). */
export const SelfRoute = z.strictObject({
  prefix: RoutePrefix,
  /** False: it waits for an admin's approval (or an auto-approver) and nobody routes to it yet. */
  approved: z.boolean(),
});
export type SelfRoute = z.infer<typeof SelfRoute>;

/** A device's routes as the API shows them (GET /api/v1/routes, one row per device and prefix). */
export const RouteRow = z.strictObject({
  deviceId: z.string().uuid(),
  deviceName: z.string(),
  prefix: RoutePrefix,
  /** The device offers it now (an admin may approve a prefix before it is advertised). */
  advertised: z.boolean(),
  approved: z.boolean(),
  /** Approved by the policy's autoApprovers rather than by an admin. */
  autoApproved: z.boolean(),
  /** The device reported its LAN for the prefix down. */
  down: z.boolean(),
  online: z.boolean(),
  /** The gateway clients prefer for this prefix right now (online, approved, up, served longest). */
  primary: z.boolean(),
  /** ISO 8601: when the device first advertised it (null: approved before it was advertised). */
  since: z.string().nullable(),
});
export type RouteRow = z.infer<typeof RouteRow>;
export const RouteList = z.strictObject({ routes: z.array(RouteRow) });
export type RouteList = z.infer<typeof RouteList>;

/** PUT /api/v1/devices/:idOrName/routes: the prefixes approved for the device (replaces the set). */
export const SetApprovedRoutesRequest = z.strictObject({
  approved: z.array(RoutePrefix).max(MAX_DEVICE_ROUTES),
});
export type SetApprovedRoutesRequest = z.infer<typeof SetApprovedRoutesRequest>;
