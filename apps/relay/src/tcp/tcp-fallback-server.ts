import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AllocationId, RELAY_PROBE_PATH, RELAY_TCP_PATH } from '@trellis/proto';
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

/** Largest frame accepted: a WireGuard packet is at most 65535 bytes. */
const MAX_FRAME = 65_535;
/** Beyond this many bytes queued towards a slow client, packets are dropped (as UDP would). */
const MAX_BUFFERED = 1 << 20;
const TCP_PATH_PREFIX = `${RELAY_TCP_PATH}/`;

/**
 * The TCP fallback for devices whose network blocks UDP: HTTPS with a WebSocket per allocation at
 * `${RELAY_TCP_PATH}/<allocationId>`, one binary frame per WireGuard packet. A WebSocket is one more
 * source to the allocation, bound by the same mac1 rule as a UDP address. Also answers
 * RELAY_PROBE_PATH with 204, which agents time to rank relays.
 */
export class TcpFallbackServer {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
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
    this.wss.handleUpgrade(req, socket, head, (ws) => this.attach(id, ws));
  }

  private attach(allocationId: string, ws: WebSocket): void {
    const channelId = `ws-${this.nextChannel++}`;
    const attached = this.options.relay.attachChannel(allocationId, channelId, {
      send: (packet) => {
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return false;
        ws.send(packet, { binary: true });
        return true;
      },
      close: () => ws.close(1000, 'allocation closed'),
    });
    if (!attached) {
      ws.close(1008, 'unknown allocation');
      return;
    }
    ws.on('message', (data, isBinary) => {
      if (isBinary && Buffer.isBuffer(data)) attached.receive(data);
      else ws.close(1003, 'binary frames only');
    });
    ws.on('close', () => attached.detach());
    ws.on('error', () => ws.terminate());
  }

  close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
