import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  decodeBatchFrame,
  encodeBatchFrames,
  RELAY_PROBE_PATH,
  RELAY_TCP_BATCH_PROTOCOL,
  RELAY_TCP_PATH,
} from '@trellis/proto';
import { type WebSocket, WebSocketServer } from 'ws';
import type { SelfSignedCert } from './self-signed-cert';

/**
 * A relay's TCP listener as the agent sees it: TLS with a self-signed certificate, 204 on the probe
 * path, and a WebSocket per allocation that echoes every binary frame (the peer answering), or in
 * `pair` mode hands it to the allocation's other WebSocket (both sides on the TCP fallback). With
 * `batch`, it takes the batched framing when offered (as a current relay); without, it is an older
 * relay, which takes the first subprotocol offered (the `ws` default).
 */
export class TlsRelayDouble {
  /** HTTP requests and WebSocket upgrades that reached the server (after TLS). */
  requests = 0;
  /** Packets received (a batched message counts each of its packets). */
  readonly frames: Buffer[] = [];
  /** Binary messages received. */
  messages = 0;
  /** The subprotocol each WebSocket took ('' for none). */
  readonly protocols: string[] = [];
  /** What the probe path answers. */
  probeStatus = 204;
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  port = 0;

  constructor(
    private readonly cert: SelfSignedCert,
    private readonly mode: 'echo' | 'pair' = 'echo',
    private readonly batch = false,
  ) {}

  get url(): string {
    return `wss://127.0.0.1:${this.port}`;
  }

  /** Listens on 127.0.0.1:`port` (0: any), or on a unix socket path. */
  async start(port: number | string = 0): Promise<void> {
    const server = createServer({ key: this.cert.key, cert: this.cert.cert }, (req, res) => {
      this.requests++;
      res.statusCode = req.url === RELAY_PROBE_PATH ? this.probeStatus : 404;
      res.end();
    });
    const wss = new WebSocketServer({
      noServer: true,
      ...(this.batch
        ? {
            handleProtocols: (offered: Set<string>) =>
              offered.has(RELAY_TCP_BATCH_PROTOCOL) && RELAY_TCP_BATCH_PROTOCOL,
          }
        : {}),
    });
    const allocations = new Map<WebSocket, string>();
    server.on('upgrade', (req, socket, head) => {
      this.requests++;
      if (!req.url?.startsWith(`${RELAY_TCP_PATH}/`)) return socket.destroy();
      wss.handleUpgrade(req, socket, head, (ws) => {
        allocations.set(ws, req.url!);
        ws.on('close', () => allocations.delete(ws));
        this.protocols.push(ws.protocol);
        const batched = ws.protocol === RELAY_TCP_BATCH_PROTOCOL;
        ws.on('message', (data: Buffer, isBinary) => {
          if (!isBinary) return void this.frames.push(data);
          this.messages++;
          const packets: Buffer[] = [];
          if (!batched) packets.push(data);
          else decodeBatchFrame(data, (p) => packets.push(Buffer.from(p)));
          this.frames.push(...packets);
          // Sent on as it came: one message, or one batch of the same packets.
          const out = batched ? encodeBatchFrames(packets) : [data];
          const targets =
            this.mode === 'echo'
              ? [ws]
              : [...allocations]
                  .filter(([other, url]) => other !== ws && url === req.url)
                  .map(([other]) => other);
          for (const target of targets) for (const m of out) target.send(m, { binary: true });
        });
      });
    });
    if (typeof port === 'string') await new Promise<void>((resolve) => server.listen(port, resolve));
    else {
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      this.port = (server.address() as AddressInfo).port;
    }
    this.server = server;
    this.wss = wss;
  }

  /** Closes every connection and the listener (a relay restart, with `start(port)` after). */
  async stop(): Promise<void> {
    for (const c of this.wss?.clients ?? []) c.terminate();
    this.wss?.close();
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Sends a frame to every connected proxy (as if from the peer). */
  push(frame: Buffer | string): void {
    for (const c of this.wss?.clients ?? []) c.send(frame, { binary: typeof frame !== 'string' });
  }
}
