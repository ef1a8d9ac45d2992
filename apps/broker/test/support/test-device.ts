import { readFileSync } from 'node:fs';
import { DeviceAuthenticator, enrollProof, generateKeyPair, type KeyPair, newNonce } from '@trellis/crypto';
import {
  API_PATHS,
  BrokerInfo,
  CAPABILITY_VERSION,
  type EnrollResponse,
  type NetmapPeer,
  ServerMessage,
} from '@trellis/proto';
import WebSocket from 'ws';
import { httpClient } from './http-client';
import { serverFrameText } from './server-frame';

type Msg = ServerMessage;

/** A simulated agent: enrolls over HTTPS and speaks the control protocol over a real WebSocket. */
export class TestDevice {
  readonly keys: KeyPair;
  enrollment?: EnrollResponse;
  ws?: WebSocket;
  readonly messages: Msg[] = [];
  closeCode?: number;
  closeReason?: string;
  /** Peers as applied from the snapshot and deltas. */
  readonly peers = new Map<string, NetmapPeer>();
  serial = -1;
  /** The broker's resume token for the netmap held (as the agent keeps it). */
  resume: string | null = null;

  constructor(
    readonly baseUrl: string,
    readonly certFile: string,
    keys?: KeyPair,
  ) {
    this.keys = keys ?? generateKeyPair();
  }

  get id(): string {
    return this.enrollment!.deviceId;
  }

  /**
   * Enrolls as the agent does: with proof of the private key, keyed with the broker's key from
   * `info`. `proof: null` leaves it out, `proof: key` makes it with another (wrong) private key.
   */
  async enroll(
    setupKey: string,
    extra: { name?: string; hostname?: string; endpoints?: string[]; proof?: null | string } = {},
  ) {
    const res = await this.postEnroll(setupKey, extra);
    if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${res.text}`);
    this.enrollment = res.json as EnrollResponse;
    return this.enrollment;
  }

  async postEnroll(
    setupKey: string,
    extra: { name?: string; hostname?: string; endpoints?: string[]; proof?: null | string } = {},
  ) {
    const api = httpClient(this.baseUrl, this.certFile);
    const info = BrokerInfo.parse((await api('GET', API_PATHS.info)).json);
    const at = Date.now();
    const signer = extra.proof === undefined ? this.keys.privateKey : extra.proof;
    const proof =
      signer === null
        ? undefined
        : { at, mac: enrollProof(signer, this.keys.publicKey, info.brokerPublicKey, setupKey, at) };
    return api('POST', API_PATHS.enroll, {
      body: {
        protocolVersion: CAPABILITY_VERSION,
        setupKey,
        publicKey: this.keys.publicKey,
        hostname: extra.hostname ?? 'host',
        os: 'linux',
        endpoints: extra.endpoints ?? [],
        ...(extra.name ? { name: extra.name } : {}),
        ...(proof ? { proof } : {}),
      },
    });
  }

  /** Opens the socket without speaking (for bad-input tests). */
  open(): Promise<WebSocket> {
    const url = new URL(API_PATHS.control, this.baseUrl.replace(/^http/, 'ws'));
    const ws = new WebSocket(url, { ca: readFileSync(this.certFile) });
    this.ws = ws;
    this.closeCode = undefined;
    ws.on('message', (data: Buffer, isBinary) => {
      const msg = ServerMessage.parse(JSON.parse(serverFrameText(data, isBinary)));
      this.messages.push(msg);
      this.apply(msg);
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    return opened(ws);
  }

  private apply(msg: Msg): void {
    if (msg.type === 'netmap') {
      this.peers.clear();
      for (const p of msg.peers) this.peers.set(p.id, p);
      this.serial = msg.serial;
      this.resume = msg.resume ?? null;
    } else if (msg.type === 'delta') {
      const base = msg.base ?? msg.serial - 1;
      if (base !== this.serial) throw new Error(`delta serial ${msg.serial} on ${base} after ${this.serial}`);
      this.serial = msg.serial;
      this.resume = msg.resume ?? null;
      for (const p of msg.upsert) this.peers.set(p.id, p);
      for (const id of msg.remove) this.peers.delete(id);
      for (const id of msg.online ?? []) this.setOnline(id, true);
      for (const id of msg.offline ?? []) this.setOnline(id, false);
    }
  }

  private setOnline(id: string, online: boolean): void {
    const p = this.peers.get(id);
    if (p) this.peers.set(id, { ...p, online });
  }

  send(obj: unknown): void {
    this.ws!.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  /** Full handshake with DeviceAuthenticator; resolves with the snapshot. */
  async connect(
    opts: { lastSerial?: number; protocolVersion?: number } = {},
  ): Promise<Extract<Msg, { type: 'netmap' }>> {
    const start = this.messages.length;
    await this.authenticate(opts);
    const netmap = await this.waitFor((m) => m.type === 'netmap', start);
    return netmap as Extract<Msg, { type: 'netmap' }>;
  }

  /**
   * Connects again as the agent does, naming the netmap held and its resume token; resolves with
   * the first netmap frame: a delta on top of it (resumed) or a snapshot.
   */
  async reconnect(): Promise<Extract<Msg, { type: 'netmap' | 'delta' }>> {
    const start = this.messages.length;
    await this.authenticate({ lastSerial: this.serial, ...(this.resume ? { resume: this.resume } : {}) });
    const first = await this.waitFor((m) => m.type === 'netmap' || m.type === 'delta', start);
    return first as Extract<Msg, { type: 'netmap' | 'delta' }>;
  }

  /** Opens a connection and goes through hello, challenge and auth; the netmap is not awaited. */
  async authenticate(opts: {
    lastSerial?: number;
    resume?: string;
    protocolVersion?: number;
  }): Promise<void> {
    const start = this.messages.length;
    await this.open();
    const clientNonce = newNonce();
    const auth = new DeviceAuthenticator(
      this.keys.privateKey,
      this.keys.publicKey,
      this.enrollment!.brokerPublicKey,
    );
    this.send({
      type: 'hello',
      protocolVersion: opts.protocolVersion ?? CAPABILITY_VERSION,
      deviceId: this.id,
      publicKey: this.keys.publicKey,
      clientNonce,
      ...(opts.lastSerial !== undefined ? { lastSerial: opts.lastSerial } : {}),
      ...(opts.resume !== undefined ? { resume: opts.resume } : {}),
    });
    const challenge = await this.waitFor((m) => m.type === 'challenge', start);
    if (challenge.type !== 'challenge') throw new Error('no challenge');
    if (!auth.verifyBroker(challenge.brokerProof, clientNonce, challenge.brokerNonce)) {
      throw new Error('broker proof did not verify');
    }
    this.send({ type: 'auth', proof: auth.deviceProof(clientNonce, challenge.brokerNonce) });
  }

  waitFor(pred: (m: Msg) => boolean, from = 0, timeoutMs = 15_000): Promise<Msg> {
    return waitUntil(() => this.messages.slice(from).find(pred), timeoutMs, 'message');
  }

  waitForClose(timeoutMs = 15_000): Promise<number> {
    return waitUntil(() => this.closeCode, timeoutMs, 'close');
  }

  waitForPeers(pred: (peers: Map<string, NetmapPeer>) => boolean, timeoutMs = 15_000): Promise<true> {
    return waitUntil(() => pred(this.peers) || undefined, timeoutMs, 'peers condition');
  }

  close(): void {
    this.ws?.close();
  }
}

/** Polls until fn returns something other than undefined; generous timeout, no wall-clock assertions. */
export async function waitUntil<T>(fn: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves once the socket is open; later socket errors surface as its close. */
export function opened(ws: WebSocket): Promise<WebSocket> {
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
