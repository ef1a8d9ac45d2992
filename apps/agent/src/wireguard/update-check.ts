import { parseEndpoint, parseIpv4Cidr, WgKey } from '@trellis/proto';
import type { WgConfigUpdate } from './types';

export class UnsafeConfigValueError extends Error {}

const isKey = (k: string) => WgKey.safeParse(k).success;
const isPort = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;
const isMark = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
const isEndpoint = (e: string) => parseEndpoint(e) !== null;
/** An IPv4 or IPv6 prefix and nothing else (WireGuard takes both; the overlay is IPv4). */
const isCidr = (c: string) =>
  parseIpv4Cidr(c) !== null || /^(?=[^/]*:)[0-9a-fA-F:.]{2,45}\/(\d|[1-9]\d|1[01]\d|12[0-8])$/.test(c);

function check<T>(what: string, value: T, valid: (v: T) => boolean): void {
  if (!valid(value)) {
    throw new UnsafeConfigValueError(`refusing to write ${what} ${JSON.stringify(value)} to WireGuard`);
  }
}

/**
 * Checks every value of an update against its form before any of it is written: UAPI is a line
 * protocol and `wg` takes comma-separated lists, so a value with a line break or a comma in it
 * would add a peer or an allowed IP of its own.
 */
export function assertWritableUpdate(update: WgConfigUpdate): void {
  if (update.privateKey !== undefined && !isKey(update.privateKey)) {
    throw new UnsafeConfigValueError('refusing to write a private key that is not 32 bytes of base64');
  }
  if (update.listenPort !== undefined) check('listen port', update.listenPort, isPort);
  if (update.fwmark !== undefined) check('fwmark', update.fwmark, isMark);
  for (const p of update.peers) {
    check('public key', p.publicKey, isKey);
    if (p.remove) continue;
    if (p.endpoint !== undefined) check('endpoint', p.endpoint, isEndpoint);
    if (p.persistentKeepalive !== undefined) check('keepalive', p.persistentKeepalive, isPort);
    for (const ip of p.allowedIps ?? []) check('allowed IP', ip, isCidr);
  }
}
