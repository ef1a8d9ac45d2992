import { isIPv4, isIPv6 } from 'node:net';

/** Windows' address family numbers (winsock2.h), as they appear in SOCKADDR_INET and allowed IPs. */
export const AF_INET = 2;
export const AF_INET6 = 23;

export type IpFamily = typeof AF_INET | typeof AF_INET6;

/** An address as the raw bytes wireguard-nt stores: 4 bytes for IPv4, 16 for IPv6. */
export interface RawAddress {
  family: IpFamily;
  bytes: Buffer;
}

export function parseIp(text: string): RawAddress {
  if (isIPv4(text)) return { family: AF_INET, bytes: Buffer.from(text.split('.').map(Number)) };
  if (isIPv6(text)) return { family: AF_INET6, bytes: parseIpv6(text) };
  throw new Error(`not an IP address: ${JSON.stringify(text)}`);
}

/** Formats like inet_ntop (what `wg` and the UAPI report): IPv6 in RFC 5952 form. */
export function formatIp(addr: RawAddress): string {
  if (addr.family === AF_INET) return [...addr.bytes.subarray(0, 4)].join('.');
  return formatIpv6(addr.bytes);
}

function parseIpv6(text: string): Buffer {
  let s = text;
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) is two 16-bit groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  const groups = (part: string | undefined) =>
    part === undefined || part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16));
  const before = groups(halves[0]);
  const after = groups(halves[1]);
  const all = [...before, ...new Array<number>(8 - before.length - after.length).fill(0), ...after];
  const out = Buffer.alloc(16);
  for (const [i, g] of all.entries()) out.writeUInt16BE(g, i * 2);
  return out;
}

function formatIpv6(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${[...bytes.subarray(12, 16)].join('.')}`;
  }
  // The longest run of two or more zero groups becomes `::` (the first one on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** `10.0.0.1/32` or `fd00::/8` into family, address bytes and prefix length. */
export function parseCidr(text: string): RawAddress & { cidr: number } {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`not a prefix: ${JSON.stringify(text)}`);
  const addr = parseIp(text.slice(0, slash));
  const cidr = Number(text.slice(slash + 1));
  const max = addr.family === AF_INET ? 32 : 128;
  if (!Number.isInteger(cidr) || cidr < 0 || cidr > max) throw new Error(`bad prefix length: ${text}`);
  return { ...addr, cidr };
}

export interface SockaddrInet {
  family: IpFamily;
  address: Buffer;
  port: number;
  /** IPv6 only; part of the endpoint WireGuard reports (`[fe80::1%3]:51820`). */
  scopeId: number;
  flowInfo: number;
}

/** `1.2.3.4:51820` or `[fd00::1]:51820` (optionally `%scope`), the form the agent uses for endpoints. */
export function parseEndpointAddress(text: string): SockaddrInet {
  const m6 = /^\[([^\]%]+)(?:%(\d+))?\]:(\d{1,5})$/.exec(text);
  const m4 = /^([0-9.]+):(\d{1,5})$/.exec(text);
  const host = m6?.[1] ?? m4?.[1];
  const port = Number(m6?.[3] ?? m4?.[2]);
  if (host === undefined || !(port >= 1 && port <= 65535)) throw new Error(`bad endpoint: ${text}`);
  const addr = parseIp(host);
  if ((m6 !== null) !== (addr.family === AF_INET6)) throw new Error(`bad endpoint: ${text}`);
  return { family: addr.family, address: addr.bytes, port, scopeId: Number(m6?.[2] ?? 0), flowInfo: 0 };
}

export function formatEndpointAddress(s: SockaddrInet): string {
  const host = formatIp({ family: s.family, bytes: s.address });
  if (s.family === AF_INET) return `${host}:${s.port}`;
  return `[${host}${s.scopeId ? `%${s.scopeId}` : ''}]:${s.port}`;
}
