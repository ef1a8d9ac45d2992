import { formatEndpoint } from '@trellis/proto';

/** A UDP source as the socket reports it. */
export interface SourceAddress {
  address: string;
  port: number;
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; peers must see them as plain IPv4. */
export function normalizeSource(source: SourceAddress): SourceAddress {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(source.address);
  return m ? { address: m[1]!, port: source.port } : source;
}

/** `ip:port` or `[ipv6]:port`: the Endpoint form of @trellis/proto and WireGuard's UAPI. */
export function formatSource(source: SourceAddress): string {
  return formatEndpoint(source.address, source.port);
}
