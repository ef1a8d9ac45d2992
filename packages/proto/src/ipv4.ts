import { z } from 'zod';

/**
 * IPv4 addresses and prefixes as the overlay uses them. The agent checks everything the broker
 * routes into WireGuard against the overlay prefix, so a broker (or anyone who took its place)
 * cannot make a device send its other traffic into the mesh.
 */

const octet = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
export const IPV4_RE = new RegExp(`^${octet}(\\.${octet}){3}$`);

/** The overlay prefix every account allocates device addresses from. */
export const OVERLAY_PREFIX = '100.64.0.0/10';

/** A dotted IPv4 address as a 32-bit unsigned integer; null when it is not one. */
export function ipv4ToInt(ip: string): number | null {
  if (!IPV4_RE.test(ip)) return null;
  return ip.split('.').reduce((n, o) => ((n << 8) | Number(o)) >>> 0, 0);
}

/** `a.b.c.d/n` parsed; null when it is not one. Host bits may be set (`100.64.0.7/32`). */
export function parseIpv4Cidr(cidr: string): { base: number; bits: number } | null {
  const m = /^([0-9.]{7,15})\/(\d{1,2})$/.exec(cidr);
  if (!m) return null;
  const base = ipv4ToInt(m[1]!);
  const bits = Number(m[2]);
  if (base === null || bits > 32) return null;
  return { base, bits };
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
}

/** Whether `ip` lies in `cidr` (false when either is malformed). */
export function ipv4InCidr(ip: string, cidr: string): boolean {
  const n = ipv4ToInt(ip);
  const c = parseIpv4Cidr(cidr);
  if (n === null || c === null) return false;
  const mask = maskOf(c.bits);
  return (n & mask) >>> 0 === (c.base & mask) >>> 0;
}

/** Whether every address of `inner` lies in `outer` (false when either is malformed). */
export function ipv4CidrWithin(inner: string, outer: string): boolean {
  const i = parseIpv4Cidr(inner);
  const o = parseIpv4Cidr(outer);
  if (i === null || o === null || i.bits < o.bits) return false;
  const mask = maskOf(o.bits);
  return (i.base & mask) >>> 0 === (o.base & mask) >>> 0;
}

export const Ipv4 = z.string().regex(IPV4_RE, 'must be a dotted IPv4 address');
export type Ipv4 = z.infer<typeof Ipv4>;

export const Ipv4Cidr = z
  .string()
  .max(18)
  .refine((s) => parseIpv4Cidr(s) !== null, 'must be an IPv4 prefix a.b.c.d/n');

/** An address of the overlay. */
export const OverlayAddress = Ipv4.refine(
  (ip) => ipv4InCidr(ip, OVERLAY_PREFIX),
  `must be an address inside the overlay ${OVERLAY_PREFIX}`,
);

/** A prefix routed into WireGuard: only ever a part of the overlay. */
export const OverlayCidr = Ipv4Cidr.refine(
  (cidr) => ipv4CidrWithin(cidr, OVERLAY_PREFIX),
  `must be a prefix inside the overlay ${OVERLAY_PREFIX}`,
);
