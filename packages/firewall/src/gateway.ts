import {
  type AccessRules,
  ipv4CidrWithin,
  ipv4InCidr,
  ipv4ToInt,
  OVERLAY_PREFIX,
  parseIpv4Cidr,
} from '@trellis/proto';
import type { CutOutcome } from './conntrack';
import {
  accessRules,
  allowanceOf,
  allowsAnything,
  FirewallPolicyError,
  INTERFACE_NAME_RE,
  overlayAddress,
  type Span,
} from './policy';

/** What a gateway device forwards between the mesh and its LAN or WAN (issue 14). */
export interface GatewayPolicy {
  /** The WireGuard interface. */
  readonly meshInterface: string;
  /** This device's overlay address; LAN hosts registered as virtual devices leave under it. */
  readonly selfAddress: string;
  /** Subnet routes this device serves; absent: no LAN. */
  readonly lan?: {
    readonly interfaceName: string;
    /** Routed prefixes, host bits clear, outside the overlay. May be empty (virtual devices only). */
    readonly routes: readonly string[];
    /** Masquerade mesh traffic to the gateway's LAN address (`--snat-routes`); false for site-to-site. */
    readonly masquerade: boolean;
  };
  /** LAN hosts projected into the mesh, one overlay address each (1:1 NAT). Needs `lan`. */
  readonly virtualDevices: ReadonlyArray<{ readonly meshAddress: string; readonly lanAddress: string }>;
  /** Who may open what behind the gateway: a prefix within a route, or a virtual device's mesh address. */
  readonly access: ReadonlyArray<{
    readonly peer: string;
    readonly destination: string;
    readonly allow: AccessRules;
  }>;
  /** Exit node: forward the listed peers' traffic to the WAN interface, masqueraded. IPv4 only. */
  readonly exitNode?: {
    readonly wanInterface: string;
    readonly peers: readonly string[];
    /**
     * IPv4 prefixes an exit client may not reach through the WAN (private ranges, the node's own
     * subnets: on a one-NIC node the WAN is the LAN); only subnet-route rules may let them through.
     */
    readonly excluded?: readonly string[];
  };
}

/** One (peer, destination) pair after merging its rules; destination is `a.b.c.d/n`. */
export interface ForwardAllowance {
  readonly peer: string;
  readonly destination: string;
  readonly all: boolean;
  readonly icmp: boolean;
  readonly tcp: readonly Span[];
  readonly udp: readonly Span[];
}

export interface NormalizedGateway {
  readonly meshInterface: string;
  readonly selfAddress: string;
  readonly lan: {
    readonly interfaceName: string;
    readonly routes: string[];
    readonly masquerade: boolean;
  } | null;
  /** Sorted by mesh address. */
  readonly virtualDevices: Array<{ readonly meshAddress: string; readonly lanAddress: string }>;
  /** Sorted by peer then destination; pairs allowed nothing left out. */
  readonly access: ForwardAllowance[];
  readonly exitNode: {
    readonly wanInterface: string;
    readonly peers: string[];
    /** Canonical, sorted, none within another. */
    readonly excluded: string[];
  } | null;
}

const fail = (why: string): never => {
  throw new FirewallPolicyError(why);
};

function interfaceName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !INTERFACE_NAME_RE.test(value)) {
    return fail(`${what}: ${JSON.stringify(value)} must match ${INTERFACE_NAME_RE}`);
  }
  return value;
}

/** A LAN-side address: dotted IPv4, outside the overlay (it would shadow mesh devices). */
function lanAddress(value: unknown, what: string): string {
  if (typeof value !== 'string' || ipv4ToInt(value) === null || ipv4InCidr(value, OVERLAY_PREFIX)) {
    return fail(`${what}: ${JSON.stringify(value)} is not an IPv4 address outside ${OVERLAY_PREFIX}`);
  }
  return value;
}

/** A routed prefix: canonical (host bits clear, so nft prints back what it was given), not /0, not overlay. */
function routeCidr(value: unknown, what: string): string {
  const c = typeof value === 'string' ? parseIpv4Cidr(value) : null;
  if (c === null) return fail(`${what}: ${JSON.stringify(value)} is not an IPv4 prefix a.b.c.d/n`);
  const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
  if ((c.base & mask) >>> 0 !== c.base) fail(`${what}: ${value} has host bits set`);
  if (c.bits === 0) fail(`${what}: a default route is an exit node, not a subnet route`);
  const v = value as string;
  if (ipv4CidrWithin(v, OVERLAY_PREFIX) || ipv4CidrWithin(OVERLAY_PREFIX, v)) {
    fail(`${what}: ${v} overlaps the overlay ${OVERLAY_PREFIX}`);
  }
  return v;
}

/** Most (peer, destination) entries a gateway policy's `access` may list; a longer one is refused whole. */
export const MAX_GATEWAY_ACCESS = 65_536;

function list(value: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(value)) return fail(`${what} must be an array`);
  if (value.length > max) fail(`${what}: at most ${max} entries`);
  return value;
}

const toInt = (a: string) => ipv4ToInt(a)!;
const cidrKey = (c: string) => {
  const p = parseIpv4Cidr(c)!;
  return p.base * 64 + p.bits;
};

function normalizeLan(value: unknown): NormalizedGateway['lan'] {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object') return fail('lan must be an object');
  const v = value as Record<string, unknown>;
  if (typeof v.masquerade !== 'boolean') fail('lan.masquerade must be a boolean');
  const routes = list(v.routes, 'lan.routes', 256).map((r, i) => routeCidr(r, `lan.routes[${i}]`));
  if (new Set(routes).size !== routes.length) fail('lan.routes lists a prefix twice');
  routes.sort((a, b) => cidrKey(a) - cidrKey(b));
  return {
    interfaceName: interfaceName(v.interfaceName, 'lan.interfaceName'),
    routes,
    masquerade: v.masquerade as boolean,
  };
}

/**
 * Checks a gateway policy strictly (it is built from what the network sent; every value ends up in
 * a ruleset) and merges each (peer, destination)'s rules. Throws FirewallPolicyError naming the field.
 */
export function normalizeGateway(policy: GatewayPolicy): NormalizedGateway {
  if (typeof policy !== 'object' || policy === null) return fail('gateway policy must be an object');
  const meshInterface = interfaceName(policy.meshInterface, 'meshInterface');
  const selfAddress = overlayAddress(policy.selfAddress, 'selfAddress');
  const lan = normalizeLan(policy.lan);
  if (lan && lan.interfaceName === meshInterface) fail('lan.interfaceName is the mesh interface');

  const meshSeen = new Set<string>([selfAddress]);
  const lanSeen = new Set<string>();
  const virtualDevices = list(policy.virtualDevices, 'virtualDevices', 1024).map((d, i) => {
    const what = `virtualDevices[${i}]`;
    if (typeof d !== 'object' || d === null) return fail(`${what} must be an object`);
    if (!lan) return fail(`${what}: virtual devices need lan`);
    const rec = d as Record<string, unknown>;
    const meshAddress = overlayAddress(rec.meshAddress, `${what}.meshAddress`);
    const lanAddr = lanAddress(rec.lanAddress, `${what}.lanAddress`);
    if (meshSeen.has(meshAddress)) fail(`${what}: ${meshAddress} is taken`);
    if (lanSeen.has(lanAddr)) fail(`${what}: ${lanAddr} is already a virtual device`);
    meshSeen.add(meshAddress);
    lanSeen.add(lanAddr);
    return { meshAddress, lanAddress: lanAddr };
  });
  virtualDevices.sort((a, b) => toInt(a.meshAddress) - toInt(b.meshAddress));
  const vdAddresses = new Set(virtualDevices.map((d) => d.meshAddress));

  const pairs = new Set<string>();
  const access: ForwardAllowance[] = [];
  for (const [i, a] of list(policy.access, 'access', MAX_GATEWAY_ACCESS).entries()) {
    const what = `access[${i}]`;
    if (typeof a !== 'object' || a === null) fail(`${what} must be an object`);
    const rec = a as Record<string, unknown>;
    const peer = overlayAddress(rec.peer, `${what}.peer`);
    if (peer === selfAddress || vdAddresses.has(peer)) fail(`${what}.peer: ${peer} is this gateway`);
    const d = rec.destination;
    let destination: string;
    if (typeof d === 'string' && vdAddresses.has(d)) destination = `${d}/32`;
    else {
      destination = routeCidr(d, `${what}.destination`);
      if (!lan?.routes.some((r) => ipv4CidrWithin(destination, r))) {
        fail(`${what}.destination: ${destination} is neither a virtual device nor inside a route`);
      }
    }
    const key = `${peer} ${destination}`;
    if (pairs.has(key)) fail(`${what}: ${peer} to ${destination} is listed twice`);
    pairs.add(key);
    const merged = allowanceOf(peer, accessRules(rec.allow, `${what}.allow`));
    if (allowsAnything(merged)) {
      access.push({
        peer,
        destination,
        all: merged.all,
        icmp: merged.icmp,
        tcp: merged.tcp,
        udp: merged.udp,
      });
    }
  }
  access.sort((x, y) => toInt(x.peer) - toInt(y.peer) || cidrKey(x.destination) - cidrKey(y.destination));

  let exitNode: NormalizedGateway['exitNode'] = null;
  if (policy.exitNode !== undefined && policy.exitNode !== null) {
    const e = policy.exitNode as unknown as Record<string, unknown>;
    if (typeof e !== 'object') fail('exitNode must be an object');
    const wanInterface = interfaceName(e.wanInterface, 'exitNode.wanInterface');
    if (wanInterface === meshInterface) fail('exitNode.wanInterface is the mesh interface');
    const peers = list(e.peers, 'exitNode.peers', 65536).map((p, i) =>
      overlayAddress(p, `exitNode.peers[${i}]`),
    );
    if (new Set(peers).size !== peers.length) fail('exitNode.peers lists a peer twice');
    peers.sort((a, b) => toInt(a) - toInt(b));
    const excluded = excludedPrefixes(
      e.excluded === undefined ? [] : list(e.excluded, 'exitNode.excluded', 4096),
    );
    exitNode = { wanInterface, peers, excluded };
  }
  return { meshInterface, selfAddress, lan, virtualDevices, access, exitNode };
}

/** Prefixes with host bits cleared, those inside another left out (interval sets refuse overlaps). */
function excludedPrefixes(values: unknown[]): string[] {
  const parsed = values.map((v, i) => {
    const c = typeof v === 'string' ? parseIpv4Cidr(v) : null;
    if (c === null)
      return fail(`exitNode.excluded[${i}]: ${JSON.stringify(v)} is not an IPv4 prefix a.b.c.d/n`);
    const mask = c.bits === 0 ? 0 : (~0 << (32 - c.bits)) >>> 0;
    return `${intToIpv4((c.base & mask) >>> 0)}/${c.bits}`;
  });
  const unique = [...new Set(parsed)];
  return unique
    .filter((p) => !unique.some((o) => o !== p && ipv4CidrWithin(p, o)))
    .sort((a, b) => cidrKey(a) - cidrKey(b));
}

const intToIpv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

/**
 * One operating system's forwarding and NAT for a gateway device, separate from the inbound
 * FirewallBackend so a device gains or loses the gateway role without its inbound rules changing.
 */
export interface GatewayFirewall {
  readonly name: string;
  /** Makes the kernel forward exactly what `policy` says; throws on an invalid policy or a load failure. */
  apply(policy: GatewayPolicy): Promise<{ changed: boolean; cut?: CutOutcome }>;
  /** Takes away the gateway rules, nothing else; no error when there are none. */
  remove(): Promise<void>;
}
