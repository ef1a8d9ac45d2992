import type { Agent } from 'node:https';
import { inflateRawSync } from 'node:zlib';
import {
  AUTH_TIMEOUT_MS,
  type BrokerTarget,
  type ClientMessage,
  MAX_SERVER_FRAME_BYTES,
  ServerMessage,
} from '@trellis/proto';
import { fixedLookup } from '@trellis/tls';
import WebSocket from 'ws';
import { controlUrl, describeTarget } from '../trust/broker-url';
import { describeBrokerError } from '../util/network-error';

/** Idle time before the first TCP keepalive probe; libuv then probes every second. */
export const TCP_KEEPALIVE_IDLE_MS = 1_000;

export interface ControlSocketEvents {
  onOpen(): void;
  /** A frame's JSON text (a compressed snapshot inflated); null for a binary frame that does not inflate. */
  onMessage(text: string | null): void;
  /** The socket failed; `error` says why, naming the broker. */
  onError(error: string): void;
  /** `error`: this socket's error, if it had one (not an earlier socket's: that may have been another broker). */
  onClose(code: number, reason: string, error: string | null): void;
}

/**
 * One WebSocket to one broker target. Once dropped, its events are no longer passed on: a socket
 * the client gave up on must not touch the next connection's state.
 */
export class ControlSocket {
  private readonly ws: WebSocket;
  private live = true;
  /** Its own address, once its TCP connection is up. */
  localAddress: string | null = null;
  private error: string | null = null;

  constructor(target: BrokerTarget, agent: Agent, events: ControlSocketEvents) {
    const where = describeTarget(target);
    const ws = new WebSocket(controlUrl(target.url), {
      agent,
      maxPayload: MAX_SERVER_FRAME_BYTES,
      handshakeTimeout: AUTH_TIMEOUT_MS,
      ...(target.address !== null ? { lookup: fixedLookup(target.address) } : {}),
    });
    this.ws = ws;
    // Roaming: when the NAT in front of us changes its public address, this TCP connection is dead
    // but nothing tells us until we send. Kernel keepalive probes every second (answered by the
    // broker's kernel, no broker work) hit the broker from the new address, get a RST, and we
    // reconnect at once, so the broker learns the new address and punches again within the 3 s.
    ws.on('upgrade', (res) => {
      res.socket.setKeepAlive(true, TCP_KEEPALIVE_IDLE_MS);
      this.localAddress = unmapIpv4(res.socket.localAddress ?? null);
    });
    ws.on('open', () => {
      if (this.live) events.onOpen();
    });
    ws.on('message', (data, isBinary) => {
      if (this.live) events.onMessage(frameText(data as Buffer, isBinary));
    });
    ws.on('error', (err) => {
      this.error = describeBrokerError(err, where);
      if (this.live) events.onError(this.error);
    });
    ws.on('close', (code, reason) => {
      if (this.live) events.onClose(code, reason.toString(), this.error);
    });
  }

  /** Sent only while open; dropped otherwise. */
  send(msg: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Stops passing on events (its close event included). */
  detach(): void {
    this.live = false;
  }

  /** Closes an open socket with this code, aborts one still connecting. */
  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, closeReason(reason));
    else this.ws.terminate();
  }
}

/**
 * A broker frame's JSON text: a text frame as it is, a binary one (capability 3: a snapshot as raw
 * DEFLATE) inflated to at most MAX_SERVER_FRAME_BYTES; null when it does not inflate within that.
 */
export function frameText(data: Buffer, isBinary: boolean): string | null {
  if (!isBinary) return data.toString('utf8');
  try {
    return inflateRawSync(data, { maxOutputLength: MAX_SERVER_FRAME_BYTES }).toString('utf8');
  } catch {
    return null;
  }
}

/** A WebSocket close reason holds at most 123 bytes of UTF-8 (RFC 6455 5.5); longer ones are cut. */
export function closeReason(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= 123) return reason;
  // Cutting inside a multi-byte character leaves U+FFFD at the end; drop it.
  return bytes
    .subarray(0, 123)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}

export type DecodedServerMessage = { ok: true; msg: ServerMessage } | { ok: false; reason: string };

/** Most schema problems named in a refusal: enough to find the field, short enough for a log line. */
const MAX_ISSUES_NAMED = 3;

/**
 * A broker message, checked against its schema; a binary frame, bad JSON or any field out of bounds
 * (an allowed IP outside the overlay, a control character in a name) refuses the whole frame, with
 * a reason that names the fields.
 */
export function decodeServerMessage(text: string | null): DecodedServerMessage {
  if (text === null)
    return { ok: false, reason: 'binary frame that is not raw DEFLATE within the size limit' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = ServerMessage.safeParse(json);
  if (parsed.success) return { ok: true, msg: parsed.data };
  const type = typeof json === 'object' && json !== null && 'type' in json ? String(json.type) : '?';
  const issues = parsed.error.issues
    .slice(0, MAX_ISSUES_NAMED)
    .map((i) => `${i.path.join('.') || '(frame)'}: ${i.message}`);
  const more = parsed.error.issues.length - issues.length;
  return {
    ok: false,
    reason: `${JSON.stringify(type.slice(0, 32))} refused: ${issues.join('; ')}${more > 0 ? ` (+${more} more)` : ''}`,
  };
}

/** A dual-stack socket's IPv4 address (::ffff:a.b.c.d) as the interface lists it. */
function unmapIpv4(address: string | null): string | null {
  return address?.replace(/^::ffff:(?=\d{1,3}(\.\d{1,3}){3}$)/i, '') ?? null;
}
