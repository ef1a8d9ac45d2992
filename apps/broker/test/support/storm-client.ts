/**
 * One simulated device of the reconnection-storm test: the agent's control connection (hello with
 * lastSerial and resume, the broker's proof checked, auth), its deadlines, and its netmap kept by a
 * HeldNetmap. Many of these share one process; each is a real WebSocket over TLS.
 */
import type { Agent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceAuthenticator, newNonce } from '@trellis/crypto';
import {
  API_PATHS,
  AUTH_TIMEOUT_MS,
  Backoff,
  CAPABILITY_VERSION,
  CloseCode,
  SNAPSHOT_TIMEOUT_MS,
} from '@trellis/proto';
import WebSocket from 'ws';
import { serverFrameText } from './server-frame';
import { HeldNetmap, type NetmapFrame } from './storm-netmap';

export interface StormDevice {
  deviceId: string;
  name: string;
  privateKey: string;
  publicKey: string;
}

/** Where the devices connect: the broker's URL, an HTTPS agent trusting its certificate, its key. */
export interface StormTarget {
  url: string;
  agent: Agent;
  brokerPublicKey: string;
}

export type ClientState = 'idle' | 'connecting' | 'ready' | 'removed' | 'gave-up';

export class StormClient {
  readonly held: HeldNetmap;
  state: ClientState = 'idle';
  ws?: WebSocket;
  /** Why the last attempt failed (for the failure message of a device that gave up). */
  lastError = '';
  /** Connection attempts that failed and were retried after a backoff. */
  retries = 0;
  /** Close codes of connections the broker closed after their netmap (each reconnected). */
  readonly closedByBroker: number[] = [];
  private running: Promise<void> | undefined;

  constructor(
    readonly device: StormDevice,
    private readonly target: StormTarget,
  ) {
    this.held = new HeldNetmap(device.deviceId);
  }

  /**
   * Connects until a netmap frame arrives, retrying failures after the agent's backoff until
   * `deadline` (epoch ms): then the device gave up. A removed device stops at once.
   */
  connect(deadline: number): Promise<void> {
    this.running ??= this.loop(deadline).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** The test removed the device: no more attempts, whatever the broker answers. */
  stop(): void {
    this.state = 'removed';
    this.ws?.terminate();
  }

  /** Drops the connection at once, as a lost network does (no close handshake). */
  drop(): void {
    if (this.state === 'ready' || this.state === 'connecting') this.state = 'idle';
    this.ws?.terminate();
  }

  private async loop(deadline: number): Promise<void> {
    const backoff = new Backoff();
    this.state = 'connecting';
    for (;;) {
      try {
        await this.attempt();
        // Removed while connecting: the broker closes it; the test no longer counts it.
        if (!this.isRemoved()) this.state = 'ready';
        return;
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        if (this.isRemoved()) return;
        if (Date.now() >= deadline) {
          this.state = 'gave-up';
          return;
        }
        this.retries++;
        await sleep(backoff.next());
      }
    }
  }

  /** A method, not a test of `state` inline: TypeScript would narrow it across the awaits. */
  private isRemoved(): boolean {
    return this.state === 'removed';
  }

  /** One connection: resolves once its first netmap frame is applied; rejects as an agent gives up. */
  private attempt(): Promise<void> {
    const { device, target, held } = this;
    const lastSerial = held.serial;
    const resume = lastSerial !== null ? held.resume : null;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${target.url.replace(/^https/, 'wss')}${API_PATHS.control}`, {
        agent: target.agent,
        perMessageDeflate: false,
        maxPayload: 64 * 1024 * 1024,
        handshakeTimeout: AUTH_TIMEOUT_MS,
      });
      this.ws = ws;
      const auth = new DeviceAuthenticator(device.privateKey, device.publicKey, target.brokerPublicKey);
      const clientNonce = newNonce();
      let gotNetmap = false;
      let timer: NodeJS.Timeout | undefined;
      const fail = (why: string) => {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(why));
      };
      const expire = (ms: number, what: string) => {
        clearTimeout(timer);
        timer = setTimeout(() => fail(`no ${what} in time`), ms);
      };
      ws.on('open', () => {
        expire(AUTH_TIMEOUT_MS, 'challenge');
        const hello = {
          type: 'hello',
          protocolVersion: CAPABILITY_VERSION,
          deviceId: device.deviceId,
          publicKey: device.publicKey,
          clientNonce,
          ...(lastSerial !== null ? { lastSerial } : {}),
          ...(resume !== null ? { resume } : {}),
        };
        ws.send(JSON.stringify(hello));
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const msg = JSON.parse(serverFrameText(data, isBinary)) as { type: string } & Record<string, unknown>;
        if (msg.type === 'netmap' || msg.type === 'delta') {
          held.apply(msg as unknown as NetmapFrame, !gotNetmap, lastSerial);
          if (!gotNetmap) {
            gotNetmap = true;
            clearTimeout(timer);
            resolve();
          }
        } else if (msg.type === 'challenge' && !gotNetmap) {
          const { brokerNonce, brokerProof } = msg as unknown as { brokerNonce: string; brokerProof: string };
          if (!auth.verifyBroker(brokerProof, clientNonce, brokerNonce))
            return fail('broker proof did not verify');
          expire(SNAPSHOT_TIMEOUT_MS, 'netmap');
          ws.send(JSON.stringify({ type: 'auth', proof: auth.deviceProof(clientNonce, brokerNonce) }));
        }
      });
      ws.on('error', (err) => fail(err.message));
      ws.on('close', (code) => {
        clearTimeout(timer);
        if (code === CloseCode.deviceRemoved) this.state = 'removed';
        if (!gotNetmap) return reject(new Error(`closed ${code} before its netmap`));
        this.onClosedAfterNetmap(ws, code);
      });
    });
  }

  /** A connection that had its netmap closed: dropped by the test, or by the broker (reconnect). */
  private onClosedAfterNetmap(ws: WebSocket, code: number): void {
    if (ws !== this.ws || this.state !== 'ready') return;
    this.closedByBroker.push(code);
    // As an agent does; the deadline is generous: the test's own wait bounds it.
    void this.connect(Date.now() + 5 * 60_000);
  }

  /** A heartbeat on an open connection (the broker closes silent ones). */
  ping(): void {
    if (this.state === 'ready' && this.ws?.readyState === WebSocket.OPEN)
      this.ws.send(JSON.stringify({ type: 'ping', t: Date.now() }));
  }
}
