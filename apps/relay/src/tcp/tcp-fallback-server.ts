import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  AllocationId,
  chooseRelayTcpProtocol,
  decodeBatchFrame,
  RELAY_PROBE_PATH,
  RELAY_TCP_BATCH_PROTOCOL,
  RELAY_TCP_MAX_BATCH_FRAME,
  RELAY_TCP_MAX_PACKET,
  RELAY_TCP_PATH,
  RelayFrameWriter,
} from '@trellis/proto';
import {
  DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
  limitConnectionsPerAddress,
  TLS_HANDSHAKE_TIMEOUT_MS,
} from '@trellis/tls';
import { WebSocket, WebSocketServer } from 'ws';
import type { Relay } from '../relay';

export interface TcpFallbackServerOptions {
  host: string;
  port: number;
  cert: string;
  key: string;
  relay: Relay;
  onError?: (err: Error) => void;
  /** Concurrent connections per source address (0: no cap); default DEFAULT_MAX_CONNECTIONS_PER_ADDRESS. */
  maxConnectionsPerAddress?: number;
}

/** Beyond this many bytes queued towards a slow client, packets are dropped (as UDP would). */
const MAX_BUFFERED = 1 << 20;
const TCP_PATH_PREFIX = `${RELAY_TCP_PATH}/`;

/**
 * The TCP fallback for devices whose network blocks UDP: HTTPS with a WebSocket per allocation at
 * `${RELAY_TCP_PATH}/<allocationId>`, WireGuard packets in binary frames (one each, or batched when the
 * agent offers it: relay-tcp-frames.ts), each event-loop turn's packets in one socket write. A
 * WebSocket is one more source to the allocation, bound by the same mac1 rule as a UDP address. Also
 * answers RELAY_PROBE_PATH with 204, which agents time to rank relays.
 */
export class TcpFallbackServer {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: RELAY_TCP_MAX_BATCH_FRAME,
    // Frames are WireGuard ciphertext: deflate would cost CPU for nothing (ws's default is off).
    perMessageDeflate: false,
    handleProtocols: (offered) => chooseRelayTcpProtocol(offered),
  });
  private nextChannel = 1;

  constructor(private readonly options: TcpFallbackServerOptions) {
    const tls = { cert: options.cert, key: options.key, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS };
    this.server = createServer(tls, (req, res) => {
      const status = req.method === 'GET' && req.url === RELAY_PROBE_PATH ? 204 : 404;
      res.writeHead(status, { 'cache-control': 'no-store' }).end();
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on('tlsClientError', () => undefined); // a scanner's bad handshake is not an event
    this.server.headersTimeout = 10_000;
    limitConnectionsPerAddress(this.server, {
      maxPerAddress: options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    });
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.server.on('error', (err) => this.options.onError?.(err));
    const { address, port } = this.server.address() as AddressInfo;
    return { host: address, port };
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = req.url ?? '';
    const id = path.startsWith(TCP_PATH_PREFIX) ? path.slice(TCP_PATH_PREFIX.length) : '';
    if (!AllocationId.safeParse(id).success || !this.options.relay.get(id)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(id, ws, socket));
  }

  private attach(allocationId: string, ws: WebSocket, socket: Duplex): void {
    const channelId = `ws-${this.nextChannel++}`;
    const batched = ws.protocol === RELAY_TCP_BATCH_PROTOCOL;
    const writer = new RelayFrameWriter(
      {
        send: (message) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(message, { binary: true });
        },
        cork: () => socket.cork(),
        uncork: () => socket.uncork(),
        schedule: setImmediate,
      },
      batched,
    );
    const attached = this.options.relay.attachChannel(allocationId, channelId, {
      send: (packet) => {
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount + writer.pendingBytes > MAX_BUFFERED)
          return false;
        writer.write(packet);
        return true;
      },
      close: () => {
        writer.flush();
        ws.close(1000, 'allocation closed');
      },
    });
    if (!attached) {
      ws.close(1008, 'unknown allocation');
      return;
    }
    ws.on('message', (data, isBinary) => {
      if (!isBinary || !Buffer.isBuffer(data)) ws.close(1003, 'binary frames only');
      else if (!batched) {
        // As ws refused a frame over maxPayload before batches raised it (1009): no packet is larger.
        if (data.length <= RELAY_TCP_MAX_PACKET) attached.receive(data);
        else ws.close(1009, 'frame too large');
      } else if (!decodeBatchFrame(data, attached.receive)) ws.close(1007, 'malformed batch');
    });
    ws.on('close', () => {
      writer.clear();
      attached.detach();
    });
    ws.on('error', () => ws.terminate());
  }

  close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
