import { formatEndpoint, MAX_ENDPOINTS, parseEndpoint } from '@trellis/proto';

/**
 * Adds the address the broker sees the device's control connection come from, with the device's
 * WireGuard port, ahead of the device's own (LAN) candidates. Behind a router that forwards the
 * WireGuard port this is the only address other sites can reach. NAT traversal replaces the guess
 * of the port with what the endpoint reflector observes.
 */
export function withObservedCandidate(
  reported: readonly string[],
  remoteAddress: string | undefined,
): string[] {
  const ip = normalizeIp(remoteAddress);
  const first = reported[0] === undefined ? null : parseEndpoint(reported[0]);
  if (!ip || !first || isLoopback(ip)) return [...reported];
  const observed = formatEndpoint(ip, first.port);
  if (reported.includes(observed)) return [...reported];
  return [observed, ...reported].slice(0, MAX_ENDPOINTS);
}

function normalizeIp(address: string | undefined): string | null {
  if (!address) return null;
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}
