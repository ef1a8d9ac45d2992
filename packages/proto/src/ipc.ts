import { z } from 'zod';
import { AccessRules } from './access';
import { MAX_BROKER_URLS } from './broker-urls';
import { DnsLabel, Endpoint, PlainText, WgKey } from './common';
import { NetmapSelf } from './control';
import { Ipv4 } from './ipv4';
import { MAX_DEVICE_ROUTES, RoutePrefix, SubnetRoute } from './routes';

/**
 * The agent's local control socket: one JSON request per line, one JSON response per line.
 * Only root (or the socket's owner) can open it: the daemon creates it with mode 0600.
 */
export const MAX_IPC_LINE_BYTES = 64 * 1024;

const Fingerprint = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-256 fingerprint');

/**
 * How a client trusts the broker: CA files, or pinned certificate fingerprints, or neither (the
 * system's CAs). The plural fields carry several broker instances' own certificates; any of them is
 * accepted on any broker URL (see brokerTrustAnchors).
 */
export const BrokerTrust = z
  .object({
    /** PEM file of the CA (or self-signed certificate) that signs the broker's certificate. */
    caFile: PlainText(4096).min(1).optional(),
    /** SHA-256 fingerprint of the broker's certificate, hex with or without colons. */
    fingerprint: Fingerprint.optional(),
    caFiles: z.array(PlainText(4096).min(1)).min(1).max(MAX_BROKER_URLS).optional(),
    fingerprints: z.array(Fingerprint).min(1).max(MAX_BROKER_URLS).optional(),
  })
  .strict();
export type BrokerTrust = z.infer<typeof BrokerTrust>;

/** Every CA file and every pin of a trust, singular and plural fields together. */
export function brokerTrustAnchors(trust: BrokerTrust): { caFiles: string[]; fingerprints: string[] } {
  const caFiles = [...(trust.caFile ? [trust.caFile] : []), ...(trust.caFiles ?? [])];
  const fingerprints = [...(trust.fingerprint ? [trust.fingerprint] : []), ...(trust.fingerprints ?? [])];
  return { caFiles: [...new Set(caFiles)], fingerprints: [...new Set(fingerprints)] };
}

/**
 * The device's gateway settings (issue 14), kept across restarts. In a request, an absent field
 * keeps its current value; `exitNode: null` turns the exit node off.
 */
export const GatewayPrefs = z.strictObject({
  /** Subnet routes this device offers to forward (`--advertise-routes`). */
  advertiseRoutes: z
    .array(SubnetRoute)
    .max(MAX_DEVICE_ROUTES - 1)
    .optional(),
  /** Offer to be an exit node (`--advertise-exit-node`). */
  advertiseExitNode: z.boolean().optional(),
  /** Masquerade mesh traffic into the LAN (default true; false for site-to-site with a route back). */
  snatRoutes: z.boolean().optional(),
  /** Use other devices' subnet routes (default true). */
  acceptRoutes: z.boolean().optional(),
  /** Send internet traffic through this peer (its name, DNS name or mesh address); null: none. */
  exitNode: PlainText(253).min(1).nullable().optional(),
  /** While an exit node is in use, reach the local LAN directly (default true). */
  exitNodeAllowLan: z.boolean().optional(),
});
export type GatewayPrefs = z.infer<typeof GatewayPrefs>;

export const UpRequest = z.strictObject({
  op: z.literal('up'),
  /** Gateway settings to change along with coming up. */
  prefs: GatewayPrefs.optional(),
  broker: z.string().url().optional(),
  /** Several instances of one broker (one database, one static key); replaces `broker`. */
  brokers: z.array(z.string().url()).min(1).max(MAX_BROKER_URLS).optional(),
  setupKey: PlainText(128).min(8).optional(),
  name: PlainText(63).min(1).optional(),
  trust: BrokerTrust.optional(),
});
export const DownRequest = z.strictObject({ op: z.literal('down') });
export const StatusRequest = z.strictObject({ op: z.literal('status') });
/** A new WireGuard key for this device, vouched for by the current one (see RotateKeyMessage). */
export const RotateKeyRequest = z.strictObject({ op: z.literal('rotate-key') });
/** Answers once a pending sign-in (an `up` that answered with `signIn`) has ended: up, or why not. */
export const WaitSignInRequest = z.strictObject({ op: z.literal('wait-sign-in') });

/** Changes gateway settings on a running (or stopped) agent; they apply at once when up. */
export const SetRequest = z.strictObject({ op: z.literal('set'), prefs: GatewayPrefs });
export type SetRequest = z.infer<typeof SetRequest>;

export const IpcRequest = z.discriminatedUnion('op', [
  SetRequest,
  UpRequest,
  DownRequest,
  StatusRequest,
  RotateKeyRequest,
  WaitSignInRequest,
]);
export type IpcRequest = z.infer<typeof IpcRequest>;
export type UpRequest = z.infer<typeof UpRequest>;

export const AgentState = z.enum([
  'stopped',
  'needs-enrollment',
  /** Waiting for the user to approve this device's sign-in code (RFC 8628). */
  'signing-in',
  'enrolling',
  'connecting',
  'connected',
  'offline',
]);
export type AgentState = z.infer<typeof AgentState>;

export const PeerStatus = z.object({
  id: z.string(),
  name: DnsLabel,
  dnsName: z.string(),
  address: Ipv4,
  publicKey: WgKey,
  online: z.boolean(),
  /** Endpoint WireGuard is using now, as UAPI reports it. */
  endpoint: Endpoint.nullable(),
  candidates: z.array(Endpoint),
  /** ISO time of the last completed handshake, null if none. */
  lastHandshake: z.string().nullable(),
  rxBytes: z.number(),
  txBytes: z.number(),
  /** The path the agent's path logic holds to the peer (absent from agents without it). */
  path: z.enum(['direct-lan', 'direct-internet', 'relay', 'none']).optional(),
  /** With path `relay`: the relay's name. */
  relayName: z.string().optional(),
  /** ISO time since which `path` has had its value. */
  pathSince: z.string().optional(),
  /** What the path logic is doing: idle, scheduled, probing, direct, backoff. */
  pathPhase: z.string().optional(),
  /** What the policy opens: `in`, what the peer may open here; `out`, what this device may open there. */
  access: z.object({ in: AccessRules, out: AccessRules }).optional(),
  /** Its key contradicts the key pinned for its address: left out of WireGuard and the firewall. */
  refused: z.boolean().optional(),
});
export type PeerStatus = z.infer<typeof PeerStatus>;

/** A virtual device (a LAN host behind a gateway) as this device sees it. */
export const VirtualStatus = z.object({
  id: z.string(),
  name: DnsLabel,
  dnsName: z.string(),
  address: Ipv4,
  /** Its gateway's name; null when the gateway is not in the netmap. */
  via: z.string().nullable(),
  /** Routed through its gateway, and that gateway is online. */
  reachable: z.boolean(),
  /** Why not (gateway absent, refused or offline, served by this device, address clash). */
  reason: z.string().optional(),
});
export type VirtualStatus = z.infer<typeof VirtualStatus>;

/** The agent's own checks: pinned keys and the firewall. */
export const GuardStatus = z.object({
  refused: z.array(
    z.object({
      address: z.string(),
      deviceId: z.string(),
      name: z.string(),
      pinnedKey: z.string(),
      offeredKey: z.string(),
      reason: z.string(),
      since: z.string(),
    }),
  ),
  /** The last accepted key change per address (rotations, admin re-keys, reused addresses). */
  keyChanges: z.array(
    z
      .object({ address: z.string(), name: z.string(), kind: z.string(), acceptedAt: z.string() })
      .passthrough(),
  ),
  firewall: z
    .object({
      backend: z.string(),
      lastApply: z
        .object({
          at: z.string(),
          mode: z.enum(['none', 'incremental', 'full']),
          cut: z.number().int(),
          cutError: z.string().optional(),
        })
        .nullable(),
      lastError: z.string().nullable(),
    })
    .nullable(),
});
export type GuardStatus = z.infer<typeof GuardStatus>;

/** The agent's names: its stub and how the OS resolver is pointed at it. */
export const DnsStatus = z.object({
  /** The account's domain the stub answers (`acme.ts.example`). */
  domain: z.string(),
  /** Where the stub answers (`100.64.0.5:53`); null while it is not serving. */
  listen: z.string().nullable(),
  /**
   * What points the OS at the stub: systemd-resolved, a managed resolv.conf, Windows' NRPT, a file in
   * macOS' /etc/resolver, or nothing (`stub`).
   */
  resolver: z.enum(['resolved', 'resolv-conf', 'nrpt', 'resolver-dir', 'none']),
  /** Nameservers other names are passed to (resolv.conf mode). */
  upstreams: z.array(z.string()),
  lastError: z.string().nullable(),
});
export type DnsStatus = z.infer<typeof DnsStatus>;

/** Gateways as this device sees them: what it offers, which gateway carries each route, the exit node. */
export const GatewayStatus = z.object({
  /** The settings in force (defaults filled in). */
  prefs: GatewayPrefs.required(),
  /** What it advertises and what the broker says of each (approved: absent while not yet heard). */
  advertised: z.array(z.object({ prefix: RoutePrefix, approved: z.boolean().optional(), down: z.boolean() })),
  /** Other devices' prefixes: the gateway that carries each now (null: none), or why it is not used. */
  routes: z.array(
    z.object({
      prefix: RoutePrefix,
      /** Name of the gateway in use; null when none. */
      via: z.string().nullable(),
      /** Every gateway of the prefix, most preferred first, and whether its tunnel is alive. */
      gateways: z.array(z.object({ name: z.string(), alive: z.boolean() })),
      installed: z.boolean(),
      /** Why it is not installed (overlaps a local subnet, not accepted, no live gateway). */
      reason: z.string().optional(),
    }),
  ),
  /** The chosen exit node; null when none is chosen. */
  exitNode: z
    .object({
      name: z.string(),
      /** active: internet traffic goes through it; blocked: it is gone or down, and nothing leaks meanwhile. */
      state: z.enum(['active', 'blocked']),
      allowLan: z.boolean(),
      reason: z.string().optional(),
    })
    .nullable(),
  /** Virtual devices this device serves: forwarded now, or why not (absent from agents without them). */
  virtualDevices: z
    .array(
      z.object({
        name: z.string(),
        address: Ipv4,
        lanAddress: Ipv4,
        served: z.boolean(),
        /** Why it is not served (its LAN address is not on the LAN interface in use, or not routed). */
        reason: z.string().optional(),
      }),
    )
    .optional(),
});
export type GatewayStatus = z.infer<typeof GatewayStatus>;

/** A pending sign-in: where the user approves this device, and with which code. */
export const SignInPrompt = z.object({
  broker: z.string(),
  verificationUri: z.string(),
  /** The same page with the code filled in (in the URL's fragment). */
  verificationUriComplete: z.string(),
  userCode: z.string(),
  expiresAt: z.string(),
});
export type SignInPrompt = z.infer<typeof SignInPrompt>;

export const StatusResponse = z.object({
  ok: z.literal(true),
  state: AgentState,
  self: NetmapSelf.nullable(),
  broker: z.object({
    /** The URL connected to (or being tried); the first one when not up. */
    url: z.string().nullable(),
    connected: z.boolean(),
    lastError: z.string().nullable(),
    /** Every broker URL this device uses, in order (absent from older agents). */
    urls: z.array(z.string()).optional(),
    /** The address `url`'s host name was connected at, when it was resolved by the agent. */
    address: z.string().nullable().optional(),
  }),
  interface: z.object({
    name: z.string(),
    listenPort: z.number().int(),
    publicKey: WgKey.nullable(),
    backend: z.string(),
  }),
  netmapSerial: z.number().int().nullable(),
  /** Where the peers came from: the live broker or the netmap saved on disk. */
  netmapSource: z.enum(['broker', 'disk', 'none']),
  peers: z.array(PeerStatus),
  /** Pins and firewall (absent from agents without them). */
  guard: GuardStatus.optional(),
  /** The netmap's virtual devices, reachable or why not (absent from agents without them). */
  virtual: z.array(VirtualStatus).optional(),
  /** While the device waits for its sign-in to be approved. */
  signIn: SignInPrompt.optional(),
  /** Routes, gateway role and exit node (absent from agents without them). */
  gateway: GatewayStatus.optional(),
  /** Names on this device (absent when DNS is off or the mesh is down). */
  dns: DnsStatus.optional(),
  /** This device's NAT as far as the agent knows it (for `trellis netcheck`). */
  netinfo: z
    .object({
      reflexive: z.array(Endpoint),
      mappingType: z.string().nullable(),
      portMapped: Endpoint.nullable(),
      /** Broker round trip of the best clock sample, ms. */
      brokerRttMs: z.number().nullable(),
    })
    .optional(),
});
export type StatusResponse = z.infer<typeof StatusResponse>;

export const OkResponse = z.object({ ok: z.literal(true), message: z.string().optional() });
/** `up`: done, or a sign-in started (or still pending) that the user must approve first. */
export const UpResponse = OkResponse.extend({ signIn: SignInPrompt.optional() });
export type UpResponse = z.infer<typeof UpResponse>;
export const ErrorResponse = z.object({ ok: z.literal(false), error: z.string() });
export const RotateKeyResponse = z.object({
  ok: z.literal(true),
  previousKey: WgKey,
  publicKey: WgKey,
});
export type RotateKeyResponse = z.infer<typeof RotateKeyResponse>;
export type ErrorResponse = z.infer<typeof ErrorResponse>;
