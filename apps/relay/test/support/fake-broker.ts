import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { API_PATHS, type RelayAllocation, RelayClientMessage, type RelayServerMessage } from '@trellis/proto';
import { createSelfSigned, fingerprintOf } from '@trellis/tls';
import { type WebSocket, WebSocketServer } from 'ws';

/**
 * A broker's relay control endpoint, just enough to drive a relay: every message the relay sends is
 * parsed with the proto schema (a schema violation fails the test), and the test scripts the replies.
 */
export class FakeBroker {
  readonly received: RelayClientMessage[] = [];
  connections = 0;
  fingerprint = '';
  url = '';
  private server!: Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private socket: WebSocket | undefined;
  private waiters: Array<() => void> = [];
  onHello: (ws: WebSocket) => void = () => undefined;

  async start(): Promise<string> {
    const tls = await createSelfSigned('fake-broker', ['127.0.0.1']);
    this.fingerprint = fingerprintOf(tls.certPem);
    this.server = createServer({ cert: tls.certPem, key: tls.keyPem });
    this.server.on('upgrade', (req, socket, head) => {
      if (req.url !== API_PATHS.relayControl) return socket.destroy();
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  private accept(ws: WebSocket): void {
    this.connections++;
    this.socket = ws;
    ws.on('message', (data) => {
      const message = RelayClientMessage.parse(JSON.parse(data.toString()));
      this.received.push(message);
      if (message.type === 'relay-hello') this.onHello(ws);
      if (message.type === 'ping') this.send({ type: 'pong', t: message.t, serverTime: Date.now() });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** A welcome holding `allocations`, heartbeat 15 s; `capabilityVersion` absent: a broker of version 1. */
  welcome(allocations: RelayAllocation[] = [], capabilityVersion?: number): void {
    this.send({
      type: 'relay-welcome',
      relayId: randomUUID(),
      scope: 'shared',
      allocations,
      heartbeatIntervalMs: 15_000,
      ...(capabilityVersion !== undefined ? { capabilityVersion } : {}),
    });
  }

  send(message: RelayServerMessage): void {
    this.socket?.send(JSON.stringify(message));
  }

  close(code: number, reason = ''): void {
    this.socket?.close(code, reason);
  }

  /** Waits until a received message matches. */
  async waitFor<T extends RelayClientMessage['type']>(
    type: T,
    match: (m: Extract<RelayClientMessage, { type: T }>) => boolean = () => true,
  ): Promise<Extract<RelayClientMessage, { type: T }>> {
    for (;;) {
      const found = this.received.find(
        (m): m is Extract<RelayClientMessage, { type: T }> => m.type === type && match(m as never),
      );
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
