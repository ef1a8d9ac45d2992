import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import {
  Backoff,
  type BackoffOptions,
  decodeBatchFrame,
  RELAY_TCP_BATCH_PROTOCOL,
  RELAY_TCP_MAX_BATCH_FRAME,
  RELAY_TCP_MAX_PACKET,
  RELAY_TCP_PACKET_PROTOCOL,
  RELAY_TCP_PATH,
  RelayFrameWriter,
  type RelayTcpInfo,
} from '@trellis/proto';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { realTimers, type Timers } from '../control/timers';
import { createPinnedAgent } from '../trust/broker-trust';

/** Largest WireGuard packet a frame may carry (a UDP datagram's payload limit). */
export const MAX_RELAY_FRAME_BYTES = RELAY_TCP_MAX_PACKET;
/** Offered in this order: an older relay takes the first (per-packet frames), a newer one batches. */
const SUBPROTOCOLS = [RELAY_TCP_PACKET_PROTOCOL, RELAY_TCP_BATCH_PROTOCOL];
/** Packets held while the WebSocket (re)connects; the oldest go first when it overflows. */
export const DEFAULT_QUEUE_PACKETS = 256;
export const RELAY_TCP_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 15_000, random: Math.random };
const CONNECT_TIMEOUT_MS = 10_000;
/** Bytes the WebSocket may hold unsent before packets are dropped (UDP semantics: late is useless). */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export interface RelayTcpProxyOptions {
  tcp: RelayTcpInfo;
  allocationId: string;
  /** WireGuard's listen port: it sends from, and receives on, 127.0.0.1:<listenPort>. */
  listenPort: number;
  logger: Logger;
  timers?: Timers;
  backoff?: BackoffOptions;
  queuePackets?: number;
  /** Called when the WebSocket opens again after a lost connection (not on the first open). */
  onReconnected?: () => void;
  /** The pinned HTTPS agent (tests may pass their own); by default one pinned to `tcp.fingerprint`. */
  agent?: Agent;
}

export interface RelayTcpCounters {
  /** Packets from WireGuard sent to the relay, and from the relay given to WireGuard. */
  toRelay: number;
  fromRelay: number;
  /** Oldest packets dropped because the queue was full while connecting. */
  queueDrops: number;
  /** Packets dropped because the TCP connection could not keep up. */
  congestionDrops: number;
  /** Datagrams on the proxy port that did not come from WireGuard. */
  foreignDrops: number;
  /** Frames from the relay that were not binary or too large. */
  badFrames: number;
  connects: number;
}

/**
 * The TCP fallback for a relay allocation (ARCHITECTURE "Relay by port allocation"): the only path
 * where the agent carries WireGuard packets. WireGuard's peer endpoint is this proxy's loopback UDP
 * port; its datagrams go in binary frames on a TLS WebSocket to the relay (certificate pinned, checked
 * before the upgrade request is written), one per frame or batched when the relay takes it
 * (relay-tcp-frames.ts), each event-loop turn's in one socket write; the packets of each frame from
 * the relay go back to WireGuard's port. The WebSocket reconnects with backoff until `close`.
 */
export class RelayTcpProxy {
  readonly counters: RelayTcpCounters = {
    toRelay: 0,
    fromRelay: 0,
    queueDrops: 0,
    congestionDrops: 0,
    foreignDrops: 0,
    badFrames: 0,
    connects: 0,
  };
  private readonly timers: Timers;
  private readonly backoff: Backoff;
  private readonly agent: Agent;
  private readonly queue: Buffer[] = [];
  private socket: Socket | null = null;
  private ws: WebSocket | null = null;
  /** The open WebSocket's writer (null while connecting). */
  private writer: RelayFrameWriter | null = null;
  private reconnectTimer: unknown = null;
  private closed = false;
  /** Why the last WebSocket failed (pin mismatch, refused, ...), for logs and status. */
  lastError: string | null = null;

  constructor(private readonly opts: RelayTcpProxyOptions) {
    this.timers = opts.timers ?? realTimers;
    this.backoff = new Backoff(opts.backoff ?? RELAY_TCP_BACKOFF);
    this.agent = opts.agent ?? createPinnedAgent(opts.tcp.fingerprint, 'relay');
  }

  get url(): string {
    return `${this.opts.tcp.url}${RELAY_TCP_PATH}/${this.opts.allocationId}`;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Binds the loopback port and starts connecting; resolves to WireGuard's endpoint for the peer. */
  async start(): Promise<string> {
    const socket = createSocket('udp4');
    socket.on('message', (msg, from) => this.fromWireGuard(msg, from));
    socket.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'relay proxy socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.connect();
    return `127.0.0.1:${socket.address().port}`;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.writer?.flush();
    this.writer = null;
    if (ws?.readyState === WebSocket.OPEN) ws.close(1000, 'relay released');
    else ws?.terminate();
    this.socket?.close();
    this.socket = null;
    this.queue.length = 0;
    this.agent.destroy();
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.closed) return;
    const ws = new WebSocket(this.url, SUBPROTOCOLS, {
      agent: this.agent,
      maxPayload: RELAY_TCP_MAX_BATCH_FRAME,
      handshakeTimeout: CONNECT_TIMEOUT_MS,
      perMessageDeflate: false,
      // An all-zero mask is no masking (ws skips the XOR both ends): frames are WireGuard ciphertext
      // inside TLS, where masking's defence (of proxies against browser scripts) has nothing to do.
      generateMask: (mask) => mask.fill(0),
    });
    this.ws = ws;
    let socket: Duplex | null = null;
    ws.on('upgrade', (res) => {
      socket = res.socket;
    });
    ws.on('open', () => {
      if (this.ws !== ws) return;
      const writer = new RelayFrameWriter(
        {
          send: (message) => {
            if (ws.readyState === WebSocket.OPEN) ws.send(message, { binary: true });
          },
          cork: () => socket?.cork(),
          uncork: () => socket?.uncork(),
          schedule: setImmediate,
        },
        ws.protocol === RELAY_TCP_BATCH_PROTOCOL,
      );
      this.writer = writer;
      this.counters.connects++;
      this.lastError = null;
      this.backoff.reset();
      this.opts.logger.info({ url: this.url, queued: this.queue.length }, 'relay TCP fallback connected');
      for (const packet of this.queue.splice(0)) this.sendFrame(ws, writer, packet);
      if (this.counters.connects > 1) this.opts.onReconnected?.();
    });
    ws.on('message', (data, isBinary) => {
      if (this.ws === ws) this.fromRelay(data, isBinary);
    });
    ws.on('error', (err) => {
      if (this.ws === ws) this.lastError = err.message;
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.writer = null;
      this.scheduleReconnect(code);
    });
  }

  private scheduleReconnect(code: number): void {
    if (this.closed) return;
    const delayMs = this.backoff.next();
    const why = this.lastError ?? `closed (${code})`;
    this.opts.logger.warn({ url: this.url, delayMs, why }, 'relay TCP fallback lost; reconnecting');
    this.reconnectTimer = this.timers.setTimeout(() => this.connect(), delayMs);
  }

  private fromWireGuard(packet: Buffer, from: RemoteInfo): void {
    if (from.address !== '127.0.0.1' || from.port !== this.opts.listenPort) {
      this.counters.foreignDrops++;
      return;
    }
    const ws = this.ws;
    if (ws?.readyState === WebSocket.OPEN && this.writer) {
      this.sendFrame(ws, this.writer, packet);
      return;
    }
    this.queue.push(packet);
    if (this.queue.length > (this.opts.queuePackets ?? DEFAULT_QUEUE_PACKETS)) {
      this.queue.shift();
      this.counters.queueDrops++;
    }
  }

  private sendFrame(ws: WebSocket, writer: RelayFrameWriter, packet: Buffer): void {
    if (ws.bufferedAmount + writer.pendingBytes > MAX_BUFFERED_BYTES) {
      this.counters.congestionDrops++;
      return;
    }
    this.counters.toRelay++;
    writer.write(packet);
  }

  private fromRelay(data: WebSocket.RawData, isBinary: boolean): void {
    const frame = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data);
    if (!isBinary) this.counters.badFrames++;
    else if (this.writer?.batched) {
      if (!decodeBatchFrame(frame, this.toWireGuard)) this.counters.badFrames++;
    } else if (frame.length === 0 || frame.length > MAX_RELAY_FRAME_BYTES) this.counters.badFrames++;
    else this.toWireGuard(frame);
  }

  private readonly toWireGuard = (packet: Uint8Array): void => {
    this.counters.fromRelay++;
    this.socket?.send(packet, this.opts.listenPort, '127.0.0.1');
  };
}
