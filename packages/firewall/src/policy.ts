import {
  type AccessRule,
  type AccessRules,
  ipv4InCidr,
  ipv4ToInt,
  MAX_ACCESS_SPANS,
  OVERLAY_PREFIX,
} from '@trellis/proto';

/** What each peer may open on this device, for the device's mesh (WireGuard) interface. */
export interface InboundPolicy {
  /** The WireGuard interface. */
  readonly interfaceName: string;
  /** This device's overlay address. */
  readonly selfAddress: string;
  /** Peers absent from the list may open nothing. */
  readonly peers: ReadonlyArray<{ readonly address: string; readonly allow: AccessRules }>;
  /**
   * Listed peers that may also ask this device's DNS stub (udp and tcp 53): the clients of an exit
   * node, whose names it resolves. Absent: none.
   */
  readonly dnsFrom?: readonly string[];
}

/** Inclusive `[first, last]`; `[0, 65535]` is every port. */
export type Span = readonly [number, number];

export const ALL_PORTS: Span = [0, 65535];

/** One peer's access after merging: `all` wins over everything else, spans are sorted and disjoint. */
export interface PeerAllowance {
  readonly address: string;
  readonly all: boolean;
  readonly icmp: boolean;
  readonly tcp: readonly Span[];
  readonly udp: readonly Span[];
}

/** A validated policy; peers sorted by address, peers allowed nothing left out. */
export interface NormalizedPolicy {
  readonly interfaceName: string;
  readonly selfAddress: string;
  readonly peers: readonly PeerAllowance[];
}

export class FirewallPolicyError extends Error {
  override readonly name = 'FirewallPolicyError';
}

/** Every generated ruleset quotes these verbatim, so they are held to what kernels accept, no more. */
export const INTERFACE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

export function overlayAddress(value: unknown, what: string): string {
  if (typeof value !== 'string' || ipv4ToInt(value) === null || !ipv4InCidr(value, OVERLAY_PREFIX)) {
    throw new FirewallPolicyError(
      `${what}: ${JSON.stringify(value)} is not an address inside ${OVERLAY_PREFIX}`,
    );
  }
  return value;
}

const isPort = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/**
 * The checks of @trellis/proto's AccessRules schema, by hand: this runs for every peer on every
 * change, and the schema parse cost more than the whole nft transaction at 1,000 peers.
 */
export function accessRules(value: unknown, what: string): AccessRule[] {
  const fail = (why: string): never => {
    throw new FirewallPolicyError(`${what}: ${why}`);
  };
  if (!Array.isArray(value)) return fail('must be an array of rules');
  if (value.length > 4) fail('at most 4 rules');
  return value.map((rule: unknown, i): AccessRule => {
    if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
      return fail(`[${i}] must be an object`);
    }
    const { proto, ports, ...rest } = rule as Record<string, unknown>;
    if (Object.keys(rest).length > 0) fail(`[${i}] has unknown keys ${Object.keys(rest).join(', ')}`);
    if (proto !== undefined && proto !== 'tcp' && proto !== 'udp' && proto !== 'icmp') {
      fail(`[${i}].proto must be tcp, udp or icmp`);
    }
    if (ports === undefined) return proto === undefined ? {} : { proto: proto as 'tcp' | 'udp' | 'icmp' };
    if (proto !== 'tcp' && proto !== 'udp') return fail(`[${i}]: only tcp and udp rules have ports`);
    if (!Array.isArray(ports) || ports.length < 1 || ports.length > MAX_ACCESS_SPANS) {
      return fail(`[${i}].ports must hold 1 to ${MAX_ACCESS_SPANS} spans`);
    }
    const spans = ports.map((span: unknown, k): [number, number] => {
      if (
        !Array.isArray(span) ||
        span.length !== 2 ||
        !isPort(span[0]) ||
        !isPort(span[1]) ||
        span[0] > span[1]
      ) {
        return fail(`[${i}].ports[${k}] must be [first, last] with 1 <= first <= last <= 65535`);
      }
      return [span[0], span[1]];
    });
    return { proto, ports: spans };
  });
}

/** Sorts and merges overlapping or adjacent spans (nftables interval sets refuse overlaps). */
export function mergeSpans(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: Array<[number, number]> = [];
  for (const [first, last] of sorted) {
    const prev = out[out.length - 1];
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last);
    else out.push([first, last]);
  }
  return out;
}

export function allowanceOf(address: string, rules: AccessRules): PeerAllowance {
  let all = false;
  let icmp = false;
  const tcp: Span[] = [];
  const udp: Span[] = [];
  for (const rule of rules) {
    if (rule.proto === undefined) all = true;
    else if (rule.proto === 'icmp') icmp = true;
    else (rule.proto === 'tcp' ? tcp : udp).push(...(rule.ports ?? [ALL_PORTS]));
  }
  if (all) return { address, all, icmp: false, tcp: [], udp: [] };
  return { address, all, icmp, tcp: mergeSpans(tcp), udp: mergeSpans(udp) };
}

export function allowsAnything(a: PeerAllowance): boolean {
  return a.all || a.icmp || a.tcp.length > 0 || a.udp.length > 0;
}

/**
 * Checks a policy strictly (it is built from what the network sent) and merges each peer's rules.
 * Throws FirewallPolicyError naming the offending field.
 */
export function normalizeInbound(policy: InboundPolicy): NormalizedPolicy {
  if (typeof policy !== 'object' || policy === null) {
    throw new FirewallPolicyError('policy must be an object');
  }
  const { interfaceName, peers } = policy;
  if (typeof interfaceName !== 'string' || !INTERFACE_NAME_RE.test(interfaceName)) {
    throw new FirewallPolicyError(
      `interfaceName: ${JSON.stringify(interfaceName)} must match ${INTERFACE_NAME_RE}`,
    );
  }
  const selfAddress = overlayAddress(policy.selfAddress, 'selfAddress');
  if (!Array.isArray(peers)) throw new FirewallPolicyError('peers must be an array');
  const seen = new Set<string>();
  const dnsFrom = new Set(policy.dnsFrom ?? []);
  const out: PeerAllowance[] = [];
  peers.forEach((peer, i) => {
    if (typeof peer !== 'object' || peer === null) {
      throw new FirewallPolicyError(`peers[${i}] must be an object`);
    }
    const address = overlayAddress(peer.address, `peers[${i}].address`);
    if (address === selfAddress) throw new FirewallPolicyError(`peers[${i}]: ${address} is this device`);
    if (seen.has(address)) throw new FirewallPolicyError(`peers[${i}]: ${address} is listed twice`);
    seen.add(address);
    const rules = accessRules(peer.allow, `peers[${i}].allow`);
    const dns: AccessRule[] = dnsFrom.has(address)
      ? [
          { proto: 'udp', ports: [[53, 53]] },
          { proto: 'tcp', ports: [[53, 53]] },
        ]
      : [];
    const allowance = allowanceOf(address, [...rules, ...dns]);
    if (allowsAnything(allowance)) out.push(allowance);
  });
  out.sort((a, b) => ipv4ToInt(a.address)! - ipv4ToInt(b.address)!);
  return { interfaceName, selfAddress, peers: out };
}

/** Whether `allowance` lets its peer open `proto` to local port `port` (ICMP: an echo request). */
export function allows(allowance: PeerAllowance | undefined, proto: string, port?: number): boolean {
  if (!allowance) return false;
  if (allowance.all) return true;
  if (proto === 'icmp') return allowance.icmp;
  if (proto !== 'tcp' && proto !== 'udp') return false;
  const spans = allowance[proto];
  return port === undefined ? spans.length > 0 : spans.some(([a, b]) => port >= a && port <= b);
}

/** Whether every span of `inner` lies inside the (merged) spans of `outer`. */
export function spansCover(outer: readonly Span[], inner: readonly Span[]): boolean {
  return inner.every(([a, b]) => outer.some(([x, y]) => x <= a && b <= y));
}

export function formatSpans(spans: readonly Span[]): string {
  if (spans.length === 1 && spans[0]![0] === 0 && spans[0]![1] === 65535) return 'all ports';
  return spans.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/** One line per peer, for logs and `trellis status`: `100.64.0.3 tcp 22,80-90 udp 53 icmp`. */
export function describeInbound(policy: InboundPolicy): string[] {
  const p = normalizeInbound(policy);
  const lines = [`${p.interfaceName} ${p.selfAddress}: ${p.peers.length} peer(s) may open something`];
  for (const a of p.peers) {
    const parts: string[] = [];
    if (a.all) parts.push('everything');
    if (a.tcp.length) parts.push(`tcp ${formatSpans(a.tcp)}`);
    if (a.udp.length) parts.push(`udp ${formatSpans(a.udp)}`);
    if (a.icmp) parts.push('icmp echo');
    lines.push(`${a.address} ${parts.join(' ')}`);
  }
  return lines;
}
