import { createServer, type Server, type Socket } from 'node:net';
import { type TLSSocket, Server as TlsServer } from 'node:tls';
import { handOffTo } from './hand-off';

/** The 12 bytes every PROXY protocol v2 header starts with. */
const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const FIXED = 16;
/**
 * The largest address block (AF_UNIX, 216 bytes) plus TLVs a proxy may add (SSL, authority,
 * unique-id, a cloud balancer's): anything longer is junk.
 */
export const MAX_PROXY_V2_PAYLOAD = 2048;
/** Connections still owing their header: past this, new ones are closed at once (no header, no broker). */
export const MAX_AWAITING_PROXY_HEADER = 1024;
/** A proxy sends its header with the connection's first bytes; this is already generous. */
export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 5_000;

export interface ProxiedAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export type ProxyV2Parse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  /** `source` null: LOCAL (the proxy's own health check) or an address family that names no peer. */
  | { kind: 'header'; length: number; source: ProxiedAddress | null };

/** Parses a PROXY protocol v2 header at the start of `buf` (haproxy's doc/proxy-protocol.txt §2.2). */
export function parseProxyV2(buf: Buffer): ProxyV2Parse {
  const seen = Math.min(buf.length, SIGNATURE.length);
  if (!buf.subarray(0, seen).equals(SIGNATURE.subarray(0, seen))) return invalid('no PROXY v2 signature');
  if (buf.length < FIXED) return { kind: 'incomplete' };
  const verCmd = buf[12] as number;
  if (verCmd >> 4 !== 2) return invalid('not version 2');
  const command = verCmd & 0x0f;
  if (command > 1) return invalid('unknown command');
  const payload = buf.readUInt16BE(14);
  if (payload > MAX_PROXY_V2_PAYLOAD) return invalid('header too long');
  if (buf.length < FIXED + payload) return { kind: 'incomplete' };
  const length = FIXED + payload;
  // LOCAL: the proxy speaks for itself; whatever address block follows is ignored (spec).
  if (command === 0) return { kind: 'header', length, source: null };
  const family = (buf[13] as number) >> 4;
  const transport = (buf[13] as number) & 0x0f;
  // UNSPEC or UNIX: no peer address to use; the connection's own stands (spec).
  if (family === 0 || family === 3) return { kind: 'header', length, source: null };
  if (family > 3) return invalid('unknown address family');
  if (transport !== 1) return invalid('not a stream connection');
  const a = buf.subarray(FIXED, length);
  if (family === 1) {
    if (a.length < 12) return invalid('short IPv4 address block');
    return {
      kind: 'header',
      length,
      source: { address: a.subarray(0, 4).join('.'), family: 'IPv4', port: a.readUInt16BE(8) },
    };
  }
  if (a.length < 36) return invalid('short IPv6 address block');
  return {
    kind: 'header',
    length,
    source: { address: ipv6(a.subarray(0, 16)), family: 'IPv6', port: a.readUInt16BE(32) },
  };
}

function invalid(reason: string): ProxyV2Parse {
  return { kind: 'invalid', reason };
}

/** The canonical text of a 16-byte address, as Node's sockets report one (`::ffff:a.b.c.d` when IPv4-mapped). */
function ipv6(bytes: Buffer): string {
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff) {
    return `::ffff:${bytes.subarray(12, 16).join('.')}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

export interface ProxyProtocolOptions {
  /** The whole header must be in by then, however it trickles in. */
  timeoutMs?: number;
  /** Most connections waiting for their header at once (default MAX_AWAITING_PROXY_HEADER). */
  maxAwaiting?: number;
  /**
   * Decides when a connection whose header is read goes on to `target` (AdmissionGate.offer); by
   * default at once.
   */
  offer?(socket: Socket, admit: (socket: Socket) => void): void;
  /** A connection closed for a missing, bad or late header; `address` is the proxy's side. */
  onRejected?(reason: string, address: string | undefined): void;
}

/** Where net.Socket's remoteAddress/remoteFamily/remotePort getters read a cached peer. */
type PeerCache = { _peername?: { address: string; family: string; port: number } };

/**
 * A listener in front of `target` (the broker's HTTP or HTTPS server, not listening itself) that
 * reads a PROXY v2 header from each connection and hands the rest to `target` as a 'connection',
 * with the socket reporting the header's source as its remote address, so every reader of
 * `remoteAddress` (per-address cap, admission gate, sign-in throttle, audit log, observed candidate)
 * sees the client, not the proxy. A connection without a valid header in time is closed: a
 * header is never optional, since one sent by a client directly would otherwise be believed.
 */
export function proxyProtocolListener(target: Server, opts: ProxyProtocolOptions = {}): Server {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROXY_HEADER_TIMEOUT_MS;
  const maxAwaiting = opts.maxAwaiting ?? MAX_AWAITING_PROXY_HEADER;
  let awaiting = 0;
  const isTls = target instanceof TlsServer;
  const admit = handOffTo(target);
  const offer = opts.offer ?? ((socket: Socket, go: (s: Socket) => void) => go(socket));
  if (isTls) {
    // The TLS socket wraps the raw one and has a peer cache of its own: give it the header's.
    target.prependListener('secureConnection', (tls: TLSSocket) => {
      const raw = (tls as unknown as { _parent?: PeerCache })._parent;
      if (raw?._peername) (tls as unknown as PeerCache)._peername = raw._peername;
    });
  }
  const front = createServer((socket) => readHeader(socket));
  // http.Server starts the sweep behind headersTimeout/requestTimeout when it starts listening.
  front.once('listening', () => target.emit('listening'));
  return front;

  function readHeader(socket: Socket): void {
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const reject = (reason: string) => {
      cleanup();
      opts.onRejected?.(reason, socket.remoteAddress);
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const parsed = parseProxyV2(buf);
      if (parsed.kind === 'incomplete') return;
      if (parsed.kind === 'invalid') return reject(parsed.reason);
      cleanup();
      socket.pause();
      if (parsed.source) {
        const { address, family, port } = parsed.source;
        (socket as unknown as PeerCache)._peername = { address, family, port };
      }
      const rest = buf.subarray(parsed.length);
      if (rest.length > 0) socket.unshift(rest);
      offer(socket, admit);
    };
    const onError = () => cleanup();
    const onClose = () => cleanup();
    // One deadline for the whole header: an idle timer would let a byte every few seconds hold it.
    const timer = setTimeout(() => reject('timeout'), timeoutMs);
    const cleanup = () => {
      if (done) return;
      done = true;
      awaiting--;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    awaiting++;
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (awaiting > maxAwaiting) reject('too many connections waiting for a header');
  }
}
