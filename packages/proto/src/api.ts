import { z } from 'zod';
import { MAX_DEVICE_TAGS, TagName } from './access';
import { DeviceId, DnsLabel, DnsName, Endpoint, Hostname, Os, PlainText, WgKey } from './common';
import { Ipv4, OVERLAY_PREFIX, OverlayAddress } from './ipv4';

/** Largest HTTP body the broker accepts; larger ones get 413. */
export const MAX_HTTP_BODY_BYTES = 64 * 1024;

export const Role = z.enum(['owner', 'admin', 'member']);
export type Role = z.infer<typeof Role>;

// --- broker info ----------------------------------------------------------------------------
export const BrokerInfo = z.object({
  /** The broker's capability version (capability.ts); brokers of version 1 send 1 here. */
  protocolVersion: z.number().int(),
  /** The same, named for what it is (absent: a broker of version 1). */
  capabilityVersion: z.number().int().positive().optional(),
  /** The oldest capability version the broker serves (absent: it takes exactly `protocolVersion`). */
  minCapabilityVersion: z.number().int().nonnegative().optional(),
  version: PlainText(64),
  brokerPublicKey: WgKey,
});
export type BrokerInfo = z.infer<typeof BrokerInfo>;

// --- users -----------------------------------------------------------------------------------
export const LoginRequest = z.strictObject({
  email: z.string().email().max(254),
  password: z.string().min(1).max(1024),
});
export type LoginRequest = z.infer<typeof LoginRequest>;

export const LoginResponse = z.object({
  token: z.string(),
  expiresAt: z.string(),
  user: z.object({
    id: z.string(),
    email: z.string(),
    role: Role,
    accountId: z.string(),
    accountName: z.string(),
  }),
});
export type LoginResponse = z.infer<typeof LoginResponse>;

/**
 * The dashboard's session: its token lives only in an HttpOnly cookie; the page gets the user and
 * the CSRF token it must send (header `x-trellis-csrf`) with every request that changes anything.
 */
export const WebSession = z.object({
  user: LoginResponse.shape.user,
  csrfToken: z.string(),
  expiresAt: z.string(),
});
export type WebSession = z.infer<typeof WebSession>;

// --- setup keys ------------------------------------------------------------------------------
export const CreateSetupKeyRequest = z.strictObject({
  name: z.string().min(1).max(128),
  reusable: z.boolean().default(false),
  /** Seconds from now; absent means the key never expires. */
  expiresInSeconds: z
    .number()
    .int()
    .positive()
    .max(10 * 365 * 86400)
    .optional(),
  /** Maximum enrollments; absent means unlimited for reusable keys, 1 for one-off keys. */
  usageLimit: z.number().int().positive().max(1_000_000).optional(),
  /** Tags the devices it enrolls get; the creator must be one of each tag's owners in the policy. */
  tags: z.array(TagName).max(MAX_DEVICE_TAGS).optional(),
  /** A block of the policy's `cidrs`: the devices it enrolls get their addresses there. */
  cidr: DnsLabel.optional(),
});
export type CreateSetupKeyRequest = z.input<typeof CreateSetupKeyRequest>;

export const SetupKeyInfo = z.object({
  id: z.string(),
  name: z.string(),
  /** First characters of the key, enough to recognise it; the key itself is only shown once. */
  prefix: z.string(),
  reusable: z.boolean(),
  usageLimit: z.number().int().nullable(),
  usedCount: z.number().int(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  createdAt: z.string(),
  valid: z.boolean(),
  tags: z.array(z.string()),
  cidr: z.string().nullable(),
});
export type SetupKeyInfo = z.infer<typeof SetupKeyInfo>;

export const CreateSetupKeyResponse = z.object({ key: z.string(), setupKey: SetupKeyInfo });
export type CreateSetupKeyResponse = z.infer<typeof CreateSetupKeyResponse>;

// --- devices ---------------------------------------------------------------------------------
export const DeviceInfo = z.object({
  id: DeviceId,
  name: DnsLabel,
  dnsName: z.string(),
  hostname: z.string(),
  os: z.string(),
  /** Null for a virtual device. */
  publicKey: WgKey.nullable(),
  address: Ipv4,
  /** A virtual device: the id of the gateway device that forwards to it (null: a device of its own). */
  via: z.string().nullable(),
  /** A virtual device's address on its gateway's LAN (null: not virtual). */
  lanAddress: z.string().nullable(),
  endpoints: z.array(Endpoint),
  online: z.boolean(),
  lastSeen: z.string().nullable(),
  createdAt: z.string(),
  tags: z.array(z.string()),
  /** Email of the user it belongs to; null: nobody's. */
  user: z.string().nullable(),
  /** False: waiting for an admin's approval (AccountSettings.requireDeviceApproval); in no netmap. */
  approved: z.boolean(),
});
export type DeviceInfo = z.infer<typeof DeviceInfo>;

/**
 * The dashboard's server-sent events (`event:` name, `data:` JSON): a device the user may see was
 * added or changed (its DeviceInfo), or a device was removed.
 */
export const DASHBOARD_EVENTS = {
  device: 'device',
  removed: 'device-removed',
  /** Paths between devices changed (PathChangedEvent). */
  path: 'path',
} as const;
export const DeviceRemovedEvent = z.object({ id: DeviceId });
export type DeviceRemovedEvent = z.infer<typeof DeviceRemovedEvent>;

/** Replaces a device's tags; the caller must own each tag it adds (the policy's tagOwners). */
export const SetDeviceTagsRequest = z.strictObject({ tags: z.array(TagName).max(MAX_DEVICE_TAGS) });
export type SetDeviceTagsRequest = z.infer<typeof SetDeviceTagsRequest>;
/**
 * An admin gives a device that lost its key (reinstalled, disk replaced) the new key it shows
 * (`trellis status`); peers see the change as `rekeyed`, and the device then re-enrolls as itself.
 */
export const RekeyDeviceRequest = z.strictObject({ publicKey: WgKey });
export type RekeyDeviceRequest = z.infer<typeof RekeyDeviceRequest>;
/** A device's new name: its DNS name `<name>.<account>.<zone>` follows. */
export const RenameDeviceRequest = z.strictObject({ name: DnsLabel });
export type RenameDeviceRequest = z.infer<typeof RenameDeviceRequest>;

// --- enrollment ------------------------------------------------------------------------------
export const MAX_ENDPOINTS = 16;

export const EnrollRequest = z.strictObject({
  /** The agent's capability version (capability.ts). */
  protocolVersion: z.number().int(),
  setupKey: PlainText(128).min(8),
  publicKey: WgKey,
  /** Wanted name; the broker makes it a unique DNS label within the account. */
  name: PlainText(63).min(1).optional(),
  hostname: Hostname,
  os: Os,
  endpoints: z.array(Endpoint).max(MAX_ENDPOINTS).default([]),
  /**
   * Proof of the private key (@trellis/crypto enrollProof, keyed with the broker's public key from
   * `info`): required when the key is enrolled already, so nobody else can re-enroll it.
   */
  proof: z
    .strictObject({
      at: z.number().int().nonnegative(),
      mac: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes of base64'),
    })
    .optional(),
});
export type EnrollRequest = z.input<typeof EnrollRequest>;

export const EnrollResponse = z.object({
  deviceId: DeviceId,
  accountId: z.string(),
  accountName: DnsLabel,
  name: DnsLabel,
  dnsName: DnsName,
  address: OverlayAddress,
  /** Routed into the overlay interface: always the whole OVERLAY_PREFIX. */
  overlayPrefix: z.literal(OVERLAY_PREFIX),
  brokerPublicKey: WgKey,
  /** False: enrolled, but it joins only once an admin approves it (its connections are refused until then). */
  approved: z.boolean().default(true),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

export const API_PATHS = {
  info: '/api/v1/info',
  login: '/api/v1/auth/login',
  /** The dashboard's cookie session: POST signs in, GET says who, DELETE signs out. */
  session: '/api/v1/auth/session',
  /** DELETE: signs the user out of every session (every browser and every API token). */
  sessions: '/api/v1/auth/sessions',
  /** GET: the ways to sign in (SignInOptions), asked before anyone is signed in. */
  signInOptions: '/api/v1/auth/options',
  /** OpenID Connect: GET start redirects to the provider, which sends the browser back to callback. */
  oidcStart: '/api/v1/auth/oidc/start',
  oidcCallback: '/api/v1/auth/oidc/callback',
  setupKeys: '/api/v1/setup-keys',
  /** GET (any user) and PATCH (owner/admin) the account's settings (AccountSettings). */
  accountSettings: '/api/v1/account/settings',
  devices: '/api/v1/devices',
  /** GET: every device's routes (RouteList); PUT …/devices/:idOrName/routes approves (admins). */
  routes: '/api/v1/routes',
  /** One page of the device list, filtered and sorted by the broker (DeviceListQuery). */
  deviceList: '/api/v1/device-list',
  policy: '/api/v1/policy',
  /** The account's DNS: its zone and the mesh-only switch (DnsSettings). */
  dns: '/api/v1/dns',
  enroll: '/api/v1/enroll',
  /** RFC 8628: a device without a setup key starts here, */
  deviceAuth: '/api/v1/device-auth',
  /** polls here for its enrollment, */
  deviceAuthToken: '/api/v1/device-auth/token',
  /** and a signed-in user looks a request up (GET …/:userCode) and decides on it (POST). */
  deviceAuthRequests: '/api/v1/device-auth/requests',
  /** The dashboard's page where the user approves a device. */
  deviceVerification: '/device',
  control: '/api/v1/control',
  relayControl: '/api/v1/relay/control',
  relayTokens: '/api/v1/relay-tokens',
  relays: '/api/v1/relays',
  /** GET (admins): the broker URL and certificate pin a private relay's command line needs (RelaySetupInfo). */
  relaySetup: '/api/v1/relays/setup',
  /** The account's users (AccountUserInfo): GET, POST; PUT …/:id/role; DELETE …/:id. Admins only. */
  users: '/api/v1/users',
  /** Server-sent events for the dashboard: devices as they change (DashboardEvent). */
  events: '/api/v1/events',
  /** Devices and the paths between them (TopologyResponse). */
  topology: '/api/v1/topology',
  /** The account's audit log, newest first (AuditQuery, AuditPage); admins only. */
  audit: '/api/v1/audit',
  metrics: '/metrics',
  health: '/healthz',
} as const;
