import { createHash } from 'node:crypto';
import { publicKeyFromPrivate } from '@trellis/crypto';
import type { WgConfigUpdate, WgDeviceState, WgPeerState } from './types';
import { assertWritableUpdate } from './update-check';
import { formatEndpointAddress, formatIp, parseCidr, parseEndpointAddress } from './wireguard-nt-addr';
import {
  InterfaceFlag,
  KEY_LENGTH,
  type NtAllowedIp,
  type NtInterface,
  type NtPeer,
  PeerFlag,
  packConfig,
  unpackConfig,
} from './wireguard-nt-struct';

/**
 * Between the agent's WireGuard model (types.ts) and wireguard-nt's configuration buffer. Pure:
 * buffers in and out, no DLL. An update means what the UAPI `set=1` of the same update means.
 */

const ZERO_KEY = Buffer.alloc(KEY_LENGTH);
/** 1970-01-01 in FILETIME (100 ns ticks since 1601-01-01 UTC). */
const UNIX_EPOCH_TICKS = 116_444_736_000_000_000n;
const TICKS_PER_SECOND = 10_000_000n;

export function handshakeTicksToUnixSeconds(ticks: bigint): number {
  if (ticks <= UNIX_EPOCH_TICKS) return 0;
  return Number((ticks - UNIX_EPOCH_TICKS) / TICKS_PER_SECOND);
}

export function unixSecondsToHandshakeTicks(seconds: number): bigint {
  return seconds === 0 ? 0n : BigInt(seconds) * TICKS_PER_SECOND + UNIX_EPOCH_TICKS;
}

/**
 * The update as wireguard-nt flags: only the fields given are set, peers are added or changed
 * (never REPLACE_PEERS), REPLACE_ALLOWED_IPS goes with a new allowed-IP list. fwmark has no
 * wireguard-nt counterpart: the driver already keeps its own UDP packets off its own adapter.
 */
export function updateToNt(update: WgConfigUpdate): NtInterface {
  assertWritableUpdate(update);
  let flags = 0;
  if (update.privateKey !== undefined) flags |= InterfaceFlag.HAS_PRIVATE_KEY;
  if (update.listenPort !== undefined) flags |= InterfaceFlag.HAS_LISTEN_PORT;
  const peers = update.peers.map((p): NtPeer => {
    const peer = emptyPeer(Buffer.from(p.publicKey, 'base64'));
    peer.flags = PeerFlag.HAS_PUBLIC_KEY;
    if (p.remove) {
      peer.flags |= PeerFlag.REMOVE;
      return peer;
    }
    if (p.endpoint !== undefined) {
      peer.flags |= PeerFlag.HAS_ENDPOINT;
      peer.endpoint = parseEndpointAddress(p.endpoint);
    }
    if (p.persistentKeepalive !== undefined) {
      peer.flags |= PeerFlag.HAS_PERSISTENT_KEEPALIVE;
      peer.persistentKeepalive = p.persistentKeepalive;
    }
    if (p.allowedIps !== undefined) {
      peer.flags |= PeerFlag.REPLACE_ALLOWED_IPS;
      peer.allowedIps = p.allowedIps.map(toNtAllowedIp);
    }
    return peer;
  });
  return {
    flags,
    listenPort: update.listenPort ?? 0,
    privateKey: update.privateKey !== undefined ? Buffer.from(update.privateKey, 'base64') : ZERO_KEY,
    publicKey: ZERO_KEY,
    peers,
  };
}

export function encodeUpdate(update: WgConfigUpdate): Buffer {
  return packConfig(updateToNt(update));
}

/** Whether an update has anything wireguard-nt can apply (fwmark alone has not). */
export function hasNtChanges(update: WgConfigUpdate): boolean {
  return update.privateKey !== undefined || update.listenPort !== undefined || update.peers.length > 0;
}

/** What WireGuardGetConfiguration reports, in the agent's terms (keys base64, handshakes in Unix seconds). */
export function ntToState(nt: NtInterface): WgDeviceState {
  const hasKey = (nt.flags & InterfaceFlag.HAS_PRIVATE_KEY) !== 0 && !nt.privateKey.equals(ZERO_KEY);
  return {
    privateKey: hasKey ? nt.privateKey.toString('base64') : null,
    listenPort: nt.flags & InterfaceFlag.HAS_LISTEN_PORT ? nt.listenPort : 0,
    peers: nt.peers.map(
      (p): WgPeerState => ({
        publicKey: p.publicKey.toString('base64'),
        endpoint: p.flags & PeerFlag.HAS_ENDPOINT && p.endpoint ? formatEndpointAddress(p.endpoint) : null,
        allowedIps: p.allowedIps.map(
          (ip) => `${formatIp({ family: ip.family, bytes: ip.address })}/${ip.cidr}`,
        ),
        persistentKeepalive: p.persistentKeepalive,
        lastHandshakeSec: handshakeTicksToUnixSeconds(p.lastHandshake),
        rxBytes: Number(p.rxBytes),
        txBytes: Number(p.txBytes),
      }),
    ),
  };
}

export function decodeState(buf: Buffer): WgDeviceState {
  return ntToState(unpackConfig(buf));
}

/**
 * The configuration the driver reports for a device in this state, flags as its Get sets them.
 * The inverse of ntToState; the recorded fake and the golden files use it.
 */
export function stateToNt(state: WgDeviceState): NtInterface {
  let flags = state.listenPort !== 0 ? InterfaceFlag.HAS_LISTEN_PORT : 0;
  if (state.privateKey !== null) flags |= InterfaceFlag.HAS_PRIVATE_KEY | InterfaceFlag.HAS_PUBLIC_KEY;
  return {
    flags,
    listenPort: state.listenPort,
    privateKey: state.privateKey !== null ? Buffer.from(state.privateKey, 'base64') : ZERO_KEY,
    publicKey:
      state.privateKey !== null ? Buffer.from(publicKeyFromPrivate(state.privateKey), 'base64') : ZERO_KEY,
    peers: state.peers.map((p) => {
      const peer = emptyPeer(Buffer.from(p.publicKey, 'base64'));
      peer.flags = PeerFlag.HAS_PUBLIC_KEY | PeerFlag.HAS_PERSISTENT_KEEPALIVE;
      if (p.endpoint !== null) {
        peer.flags |= PeerFlag.HAS_ENDPOINT;
        peer.endpoint = parseEndpointAddress(p.endpoint);
      }
      peer.persistentKeepalive = p.persistentKeepalive;
      peer.allowedIps = p.allowedIps.map(toNtAllowedIp);
      peer.lastHandshake = unixSecondsToHandshakeTicks(p.lastHandshakeSec);
      peer.rxBytes = BigInt(p.rxBytes);
      peer.txBytes = BigInt(p.txBytes);
      return peer;
    }),
  };
}

export function encodeState(state: WgDeviceState): Buffer {
  return packConfig(stateToNt(state));
}

function toNtAllowedIp(cidr: string): NtAllowedIp {
  const c = parseCidr(cidr);
  return { family: c.family, address: c.bytes, cidr: c.cidr };
}

function emptyPeer(publicKey: Buffer): NtPeer {
  return {
    flags: 0,
    publicKey,
    presharedKey: ZERO_KEY,
    persistentKeepalive: 0,
    endpoint: null,
    txBytes: 0n,
    rxBytes: 0n,
    lastHandshake: 0n,
    allowedIps: [],
  };
}

/**
 * The adapter GUID for an interface name. The same name gets the same GUID on every start, so
 * Windows keeps recognising the network (NLA) instead of creating a new one per start.
 */
export function adapterGuid(interfaceName: string): Buffer {
  const bytes = createHash('sha256').update(`trellis/wireguard-nt/${interfaceName.toLowerCase()}`).digest();
  const guid = Buffer.from(bytes.subarray(0, 16));
  // Name-based UUID (version 5 bits in Data3, RFC 4122 variant in Data4[0]); GUID fields are little-endian.
  guid.writeUInt16LE((guid.readUInt16LE(6) & 0x0fff) | 0x5000, 6);
  guid[8] = (guid[8]! & 0x3f) | 0x80;
  return guid;
}

/** `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` as Windows prints a GUID struct. */
export function formatGuid(guid: Buffer): string {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const tail = [...guid.subarray(8, 16)].map((b) => hex(b, 2)).join('');
  return `{${hex(guid.readUInt32LE(0), 8)}-${hex(guid.readUInt16LE(4), 4)}-${hex(guid.readUInt16LE(6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}}`;
}
