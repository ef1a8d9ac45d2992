import type { NetmapPeer, NetmapSelf, NetmapVirtual } from '@trellis/proto';
import { OVERLAY_PREFIX } from '@trellis/proto';

/** One account `acme` in zone `trellis.test`: ids are UUIDs, names DNS labels (the wire's schema). */
export const ZONE = 'trellis.test';

export const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;

export function selfOf(n: number, name: string, address: string): NetmapSelf {
  return {
    id: id(n),
    name,
    dnsName: `${name}.acme.${ZONE}`,
    address,
    accountName: 'acme',
    overlayPrefix: OVERLAY_PREFIX,
  };
}

export function peerOf(n: number, name: string, address: string, online = true): NetmapPeer {
  return {
    id: id(n),
    name,
    dnsName: `${name}.acme.${ZONE}`,
    publicKey: `${String.fromCharCode(64 + n).repeat(42)}A=`,
    address,
    allowedIps: [`${address}/32`],
    endpoints: [],
    online,
  };
}

export function virtualOf(n: number, name: string, address: string, via: number): NetmapVirtual {
  return { id: id(n), name, dnsName: `${name}.acme.${ZONE}`, address, via: id(via) };
}
