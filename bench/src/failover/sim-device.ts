/**
 * One simulated device with several broker URLs, failing over as an agent does (proto
 * BrokerRotation on the agent side): a round tries every broker of its list once, starting after the
 * one last dialed; a dropped connection goes to the next broker at once, a failed attempt to the
 * one after that, and only a round in which every attempt failed is followed by a backoff.
 */
import type { Agent as HttpsAgent } from 'node:https';
import { DeviceAuthenticator, newNonce } from '@trellis/crypto';
import {
  API_PATHS,
  AUTH_TIMEOUT_MS,
  Backoff,
  CAPABILITY_VERSION,
  type ClientMessage,
  CloseCode,
  SNAPSHOT_TIMEOUT_MS,
} from '@trellis/proto';
import WebSocket from 'ws';
import { frameHead } from '../control-connection';
import { nowMs } from '../stats';
import type { SimDeviceSpec } from './messages';

export interface SimDeviceIo {
  /** Base URLs of the broker instances (`order` indexes them). */
  brokers: readonly string[];
  agent: HttpsAgent;
  brokerPublicKey: string;
  /** The first dial after a drop waits uniform [0, this) ms (0: at once, as the agent does). */
  jitterMs: number;
  onReady(d: SimDevice): void;
  /** A ready connection closed (the device is already dialing the next broker). */
  onDrop(d: SimDevice): void;
  onFailure(d: SimDevice, reason: string): void;
  /** A `delta` frame, unparsed (most are not looked at). */
  onDelta(d: SimDevice, data: Buffer): void;
}

/** A netmap or delta frame's head: type, serial, a resumed delta's base, the resume token. */
const HEAD = /^\{"type":"(\w+)","serial":(\d+)(?:,"base":(\d+))?(?:,"resume":"([^"]+)")?/;

export class SimDevice {
  ready = false;
  /** Broker of the latest attempt: the one holding the device while ready. */
  broker = -1;
  /** Dials since the last drop (or since the device started). */
  attempts = 0;
  /** When the latest attempt's WebSocket opened and its challenge came (where a reconnect waits). */
  openAt = 0;
  challengeAt = 0;
  private ws: WebSocket | null = null;
  private lastSerial: number | undefined;
  /** The broker's resume token for the netmap held (as the agent keeps it). */
  private resume: string | undefined;
  /** How the latest connection got its netmap: a snapshot, or a delta resumed from the one held. */
  resumed = false;
  /** Position in `order` of the latest attempt, and attempts left in this round. */
  private pos = -1;
  private roundLeft = 0;
  private readonly backoff = new Backoff();
  private backoffTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Set by moveTo until the move has its snapshot. */
  private pinned: number | null = null;
  private retiring: WebSocket | null = null;
  private readonly auth: DeviceAuthenticator;

  constructor(
    readonly index: number,
    readonly spec: SimDeviceSpec,
    private readonly io: SimDeviceIo,
  ) {
    this.auth = new DeviceAuthenticator(spec.privateKey, spec.publicKey, io.brokerPublicKey);
  }

  get home(): number {
    return this.spec.order[0]!;
  }

  /**
   * Setup, not failover: dials broker `b`, retrying it (after backoff) rather than the rest of the
   * list until it gives a snapshot. A current connection is closed only then (make before break):
   * the broker replaces it at once, its offline update does not match the new connection, so peers
   * see no online flap.
   */
  moveTo(b: number): void {
    clearTimeout(this.backoffTimer);
    const current = this.ws;
    this.ws = null;
    if (this.ready) this.retiring = current;
    else current?.terminate();
    this.ready = false;
    this.pinned = b;
    this.pos = this.spec.order.indexOf(b);
    this.roundLeft = this.spec.order.length;
    this.dial(b);
  }

  send(msg: ClientMessage): boolean {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.backoffTimer);
    this.ws?.terminate();
    this.retiring?.terminate();
    this.ws = null;
  }

  private dialNext(): void {
    if (this.stopped) return;
    this.roundLeft--;
    this.pos = (this.pos + 1) % this.spec.order.length;
    this.dial(this.spec.order[this.pos]!);
  }

  private dial(b: number): void {
    this.broker = b;
    this.attempts++;
    const ws = new WebSocket(`${this.io.brokers[b]!.replace(/^https/, 'wss')}${API_PATHS.control}`, {
      agent: this.io.agent,
      maxPayload: 512 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: AUTH_TIMEOUT_MS,
    });
    this.ws = ws;
    const clientNonce = newNonce();
    let error: string | undefined;
    let authTimer: NodeJS.Timeout | undefined;
    const fail = (reason: string) => {
      error = reason;
      ws.terminate();
    };
    ws.on('open', () => {
      this.openAt = nowMs();
      const hello: ClientMessage = {
        type: 'hello',
        protocolVersion: CAPABILITY_VERSION,
        deviceId: this.spec.deviceId,
        publicKey: this.spec.publicKey,
        clientNonce,
        ...(this.lastSerial === undefined ? {} : { lastSerial: this.lastSerial }),
        ...(this.lastSerial === undefined || this.resume === undefined ? {} : { resume: this.resume }),
      };
      ws.send(JSON.stringify(hello));
      // As the agent: no challenge within the auth timeout counts as a failed attempt.
      authTimer = setTimeout(() => fail('no challenge within the auth timeout'), AUTH_TIMEOUT_MS);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.ws !== ws) return;
      const head = frameHead(data, isBinary);
      const framed = HEAD.exec(head);
      // A resumed delta that does not apply to the netmap held would make the agent ask for a snapshot.
      const resumes = framed?.[1] === 'delta' && framed[3] !== undefined;
      if (resumes && Number(framed[3]) !== this.lastSerial) return fail('resumed delta on another netmap');
      if (framed) {
        this.lastSerial = Number(framed[2]);
        this.resume = framed[4];
      }
      if (this.ready) {
        if (framed?.[1] === 'delta') this.io.onDelta(this, data);
        return;
      }
      if (head.includes('"challenge"')) {
        this.challengeAt = nowMs();
        const m = JSON.parse(data.toString('utf8')) as { brokerNonce: string; brokerProof: string };
        if (!this.auth.verifyBroker(m.brokerProof, clientNonce, m.brokerNonce))
          return fail('broker proof does not verify');
        ws.send(JSON.stringify({ type: 'auth', proof: this.auth.deviceProof(clientNonce, m.brokerNonce) }));
        // As the agent: the broker proved itself, so it gets longer for the snapshot.
        clearTimeout(authTimer);
        authTimer = setTimeout(() => fail('no snapshot within the snapshot timeout'), SNAPSHOT_TIMEOUT_MS);
      } else if (framed?.[1] === 'netmap' || resumes) {
        clearTimeout(authTimer);
        this.resumed = resumes;
        this.ready = true;
        this.backoff.reset();
        this.pinned = null;
        this.retiring?.close(CloseCode.normal, 'moved');
        this.retiring = null;
        this.io.onReady(this);
      }
    });
    ws.on('error', (err) => {
      error ??= err.message;
    });
    ws.on('close', (code) => {
      clearTimeout(authTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      if (code === CloseCode.deviceRemoved || this.stopped) return;
      if (wasReady) {
        // The round after a connection that was up starts with the next broker, at once.
        this.attempts = 0;
        this.roundLeft = this.spec.order.length;
        this.io.onDrop(this);
        if (this.io.jitterMs > 0)
          this.backoffTimer = setTimeout(() => this.dialNext(), Math.random() * this.io.jitterMs);
        else this.dialNext();
        return;
      }
      this.io.onFailure(this, error ?? `closed ${code} before snapshot`);
      const pinned = this.pinned;
      if (pinned !== null) {
        this.backoffTimer = setTimeout(() => this.dial(pinned), this.backoff.next());
        return;
      }
      if (this.roundLeft > 0) {
        this.dialNext();
        return;
      }
      this.backoffTimer = setTimeout(() => {
        this.roundLeft = this.spec.order.length;
        this.dialNext();
      }, this.backoff.next());
    });
  }
}
