import { AF_INET, AF_INET6, type IpFamily, type SockaddrInet } from './wireguard-nt-addr';

/**
 * The byte layout of wireguard-nt's configuration (api/wireguard.h, x64 and arm64 Windows): one
 * WIREGUARD_INTERFACE, then for each peer a WIREGUARD_PEER followed by its WIREGUARD_ALLOWED_IPs.
 * Every struct is ALIGNED(8), so each size below already includes its tail padding and the next
 * struct starts right after. The koffi declarations in wireguard-nt-api.ts must agree (tested).
 */
export const INTERFACE_LAYOUT = {
  size: 80,
  Flags: 0,
  ListenPort: 4,
  PrivateKey: 6,
  PublicKey: 38,
  PeersCount: 72,
} as const;

export const PEER_LAYOUT = {
  size: 136,
  Flags: 0,
  Reserved: 4,
  PublicKey: 8,
  PresharedKey: 40,
  PersistentKeepalive: 72,
  Endpoint: 76,
  TxBytes: 104,
  RxBytes: 112,
  LastHandshake: 120,
  AllowedIPsCount: 128,
} as const;

export const ALLOWED_IP_LAYOUT = { size: 24, Address: 0, AddressFamily: 16, Cidr: 18 } as const;

/** SOCKADDR_INET: the union of SOCKADDR_IN (16 bytes) and SOCKADDR_IN6 (28); the port is big-endian. */
export const SOCKADDR_INET_LAYOUT = {
  size: 28,
  family: 0,
  port: 2,
  v4Address: 4,
  v6FlowInfo: 4,
  v6Address: 8,
  v6ScopeId: 24,
} as const;

export const KEY_LENGTH = 32;

/** WIREGUARD_INTERFACE_FLAG */
export const InterfaceFlag = {
  HAS_PUBLIC_KEY: 1 << 0,
  HAS_PRIVATE_KEY: 1 << 1,
  HAS_LISTEN_PORT: 1 << 2,
  REPLACE_PEERS: 1 << 3,
} as const;

/** WIREGUARD_PEER_FLAG */
export const PeerFlag = {
  HAS_PUBLIC_KEY: 1 << 0,
  HAS_PRESHARED_KEY: 1 << 1,
  HAS_PERSISTENT_KEEPALIVE: 1 << 2,
  HAS_ENDPOINT: 1 << 3,
  REPLACE_ALLOWED_IPS: 1 << 5,
  REMOVE: 1 << 6,
  UPDATE: 1 << 7,
} as const;

export interface NtAllowedIp {
  family: IpFamily;
  /** 4 bytes for IPv4, 16 for IPv6. */
  address: Buffer;
  cidr: number;
}

export interface NtPeer {
  flags: number;
  publicKey: Buffer;
  presharedKey: Buffer;
  persistentKeepalive: number;
  endpoint: SockaddrInet | null;
  txBytes: bigint;
  rxBytes: bigint;
  /** 100 ns intervals since 1601-01-01 UTC; 0 means never. */
  lastHandshake: bigint;
  allowedIps: NtAllowedIp[];
}

export interface NtInterface {
  flags: number;
  listenPort: number;
  privateKey: Buffer;
  publicKey: Buffer;
  peers: NtPeer[];
}

export class WireGuardNtFormatError extends Error {}

export function packedSize(config: NtInterface): number {
  const ips = config.peers.reduce((n, p) => n + p.allowedIps.length, 0);
  return INTERFACE_LAYOUT.size + config.peers.length * PEER_LAYOUT.size + ips * ALLOWED_IP_LAYOUT.size;
}

/** Lays a configuration out as the one buffer WireGuardSetConfiguration takes. */
export function packConfig(config: NtInterface): Buffer {
  const buf = Buffer.alloc(packedSize(config));
  const I = INTERFACE_LAYOUT;
  buf.writeUInt32LE(config.flags >>> 0, I.Flags);
  buf.writeUInt16LE(config.listenPort, I.ListenPort);
  putKey(buf, I.PrivateKey, config.privateKey);
  putKey(buf, I.PublicKey, config.publicKey);
  buf.writeUInt32LE(config.peers.length, I.PeersCount);
  let at = I.size;
  for (const peer of config.peers) {
    const P = PEER_LAYOUT;
    buf.writeUInt32LE(peer.flags >>> 0, at + P.Flags);
    putKey(buf, at + P.PublicKey, peer.publicKey);
    putKey(buf, at + P.PresharedKey, peer.presharedKey);
    buf.writeUInt16LE(peer.persistentKeepalive, at + P.PersistentKeepalive);
    if (peer.endpoint) writeSockaddr(buf, at + P.Endpoint, peer.endpoint);
    buf.writeBigUInt64LE(peer.txBytes, at + P.TxBytes);
    buf.writeBigUInt64LE(peer.rxBytes, at + P.RxBytes);
    buf.writeBigUInt64LE(peer.lastHandshake, at + P.LastHandshake);
    buf.writeUInt32LE(peer.allowedIps.length, at + P.AllowedIPsCount);
    at += P.size;
    for (const ip of peer.allowedIps) {
      const A = ALLOWED_IP_LAYOUT;
      ip.address.copy(buf, at + A.Address, 0, ip.family === AF_INET ? 4 : 16);
      buf.writeUInt16LE(ip.family, at + A.AddressFamily);
      buf.writeUInt8(ip.cidr, at + A.Cidr);
      at += A.size;
    }
  }
  return buf;
}

/** Reads the buffer WireGuardGetConfiguration fills, checking every count against its length. */
export function unpackConfig(buf: Buffer): NtInterface {
  const I = INTERFACE_LAYOUT;
  need(buf, 0, I.size, 'interface');
  const config: NtInterface = {
    flags: buf.readUInt32LE(I.Flags),
    listenPort: buf.readUInt16LE(I.ListenPort),
    privateKey: Buffer.from(buf.subarray(I.PrivateKey, I.PrivateKey + KEY_LENGTH)),
    publicKey: Buffer.from(buf.subarray(I.PublicKey, I.PublicKey + KEY_LENGTH)),
    peers: [],
  };
  const peerCount = buf.readUInt32LE(I.PeersCount);
  let at = I.size;
  for (let i = 0; i < peerCount; i++) {
    const P = PEER_LAYOUT;
    need(buf, at, P.size, `peer ${i}`);
    const peer: NtPeer = {
      flags: buf.readUInt32LE(at + P.Flags),
      publicKey: Buffer.from(buf.subarray(at + P.PublicKey, at + P.PublicKey + KEY_LENGTH)),
      presharedKey: Buffer.from(buf.subarray(at + P.PresharedKey, at + P.PresharedKey + KEY_LENGTH)),
      persistentKeepalive: buf.readUInt16LE(at + P.PersistentKeepalive),
      endpoint: readSockaddr(buf, at + P.Endpoint),
      txBytes: buf.readBigUInt64LE(at + P.TxBytes),
      rxBytes: buf.readBigUInt64LE(at + P.RxBytes),
      lastHandshake: buf.readBigUInt64LE(at + P.LastHandshake),
      allowedIps: [],
    };
    const ipCount = buf.readUInt32LE(at + P.AllowedIPsCount);
    at += P.size;
    need(buf, at, ipCount * ALLOWED_IP_LAYOUT.size, `allowed IPs of peer ${i}`);
    for (let j = 0; j < ipCount; j++, at += ALLOWED_IP_LAYOUT.size) {
      peer.allowedIps.push(readAllowedIp(buf, at));
    }
    config.peers.push(peer);
  }
  return config;
}

function readAllowedIp(buf: Buffer, at: number): NtAllowedIp {
  const A = ALLOWED_IP_LAYOUT;
  const family = buf.readUInt16LE(at + A.AddressFamily);
  const cidr = buf.readUInt8(at + A.Cidr);
  if (family !== AF_INET && family !== AF_INET6) {
    throw new WireGuardNtFormatError(`allowed IP with unknown address family ${family}`);
  }
  const len = family === AF_INET ? 4 : 16;
  if (cidr > len * 8) throw new WireGuardNtFormatError(`allowed IP with prefix length ${cidr}`);
  return { family, address: Buffer.from(buf.subarray(at + A.Address, at + A.Address + len)), cidr };
}

function writeSockaddr(buf: Buffer, at: number, s: SockaddrInet): void {
  const S = SOCKADDR_INET_LAYOUT;
  buf.writeUInt16LE(s.family, at + S.family);
  buf.writeUInt16BE(s.port, at + S.port);
  if (s.family === AF_INET) {
    s.address.copy(buf, at + S.v4Address, 0, 4);
    return;
  }
  buf.writeUInt32LE(s.flowInfo >>> 0, at + S.v6FlowInfo);
  s.address.copy(buf, at + S.v6Address, 0, 16);
  buf.writeUInt32LE(s.scopeId >>> 0, at + S.v6ScopeId);
}

/** Null for an unset endpoint (family 0). */
function readSockaddr(buf: Buffer, at: number): SockaddrInet | null {
  const S = SOCKADDR_INET_LAYOUT;
  const family = buf.readUInt16LE(at + S.family);
  const port = buf.readUInt16BE(at + S.port);
  if (family === AF_INET) {
    const address = Buffer.from(buf.subarray(at + S.v4Address, at + S.v4Address + 4));
    return { family, address, port, scopeId: 0, flowInfo: 0 };
  }
  if (family === AF_INET6) {
    return {
      family,
      address: Buffer.from(buf.subarray(at + S.v6Address, at + S.v6Address + 16)),
      port,
      scopeId: buf.readUInt32LE(at + S.v6ScopeId),
      flowInfo: buf.readUInt32LE(at + S.v6FlowInfo),
    };
  }
  return null;
}

function putKey(buf: Buffer, at: number, key: Buffer): void {
  if (key.length !== KEY_LENGTH) throw new WireGuardNtFormatError(`a key of ${key.length} bytes`);
  key.copy(buf, at);
}

function need(buf: Buffer, at: number, len: number, what: string): void {
  if (at + len > buf.length) {
    throw new WireGuardNtFormatError(`configuration truncated in ${what} (${buf.length} bytes)`);
  }
}
