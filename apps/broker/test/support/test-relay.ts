import { readFileSync } from 'node:fs';
import {
  API_PATHS,
  PROTOCOL_VERSION,
  type RelayServerMessage,
  RelayServerMessage as Schema,
} from '@trellis/proto';
import WebSocket from 'ws';
import { opened, waitUntil } from './test-device';

type Welcome = Extract<RelayServerMessage, { type: 'relay-welcome' }>;

/** A simulated relay: speaks the relay control protocol over a real WebSocket. */
export class TestRelay {
  ws?: WebSocket;
  readonly messages: RelayServerMessage[] = [];
  closeCode?: number;
  closeReason?: string;
  /** When set, every `allocate` is answered `allocated` with the next port from here. */
  answerPortsFrom?: number;
  /** Ping at half the welcome's heartbeat interval, as a relay does; off to test the timeout. */
  keepAlive = true;
  private keepAliveTimer?: NodeJS.Timeout;

  constructor(
    readonly baseUrl: string,
    readonly certFile: string,
    readonly token: string,
    readonly name = 'relay-1',
  ) {}

  /** Opens the socket without speaking (for bad-input tests). */
  open(): Promise<WebSocket> {
    const url = new URL(API_PATHS.relayControl, this.baseUrl.replace(/^http/, 'ws'));
    const ws = new WebSocket(url, { ca: readFileSync(this.certFile) });
    this.ws = ws;
    this.closeCode = undefined;
    ws.on('message', (data) => {
      const msg = Schema.parse(JSON.parse(data.toString()));
      this.messages.push(msg);
      if (msg.type === 'relay-welcome' && this.keepAlive) {
        this.keepAliveTimer = setInterval(
          () => this.send({ type: 'ping', t: Date.now() }),
          msg.heartbeatIntervalMs / 2,
        );
      }
      if (msg.type === 'allocate' && this.answerPortsFrom !== undefined) {
        this.send({
          type: 'allocated',
          allocationId: msg.allocation.allocationId,
          port: this.answerPortsFrom++,
        });
      }
    });
    ws.on('close', (code, reason) => {
      clearInterval(this.keepAliveTimer);
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    return opened(ws);
  }

  hello(over: Record<string, unknown> = {}) {
    return {
      type: 'relay-hello',
      protocolVersion: PROTOCOL_VERSION,
      token: this.token,
      name: this.name,
      publicAddress: '198.51.100.7',
      ports: { first: 40_000, last: 49_999 },
      version: 'test',
      ...over,
    };
  }

  send(obj: unknown): void {
    this.ws!.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Opens, says hello, resolves with the welcome. */
  async connect(over: Record<string, unknown> = {}): Promise<Welcome> {
    const start = this.messages.length;
    await this.open();
    this.send(this.hello(over));
    return (await this.waitFor((m) => m.type === 'relay-welcome', start)) as Welcome;
  }

  waitFor(
    pred: (m: RelayServerMessage) => boolean,
    from = 0,
    timeoutMs = 15_000,
  ): Promise<RelayServerMessage> {
    return waitUntil(() => this.messages.slice(from).find(pred), timeoutMs, 'relay message');
  }

  waitForClose(timeoutMs = 15_000): Promise<number> {
    return waitUntil(() => this.closeCode, timeoutMs, 'close');
  }

  close(): void {
    this.ws?.close();
  }
}
