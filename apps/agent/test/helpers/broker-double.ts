import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  BrokerAuthenticator,
  generateKeyPair,
  type KeyPair,
  newNonce,
  verifyEnrollProof,
  verifyKeyRotation,
} from '@trellis/crypto';
import {
  type AdvertiseMessage,
  ALLOW_ALL,
  API_PATHS,
  BROKER_FEATURES,
  type BrokerInfo,
  CAPABILITY_VERSION,
  ClientMessage,
  CloseCode,
  type DeltaMessage,
  EnrollRequest,
  type EnrollResponse,
  type KeyChange,
  type NetmapPeer,
  OVERLAY_PREFIX,
  type PathStateMessage,
  type PeerAccess,
  type ServerMessage,
} from '@trellis/proto';
import WebSocket, { WebSocketServer } from 'ws';
import type { SelfSignedCert } from './self-signed-cert';
import { SignInDouble } from './sign-in-double';

/**
 * A test double of the broker, built only from packages/proto and BrokerAuthenticator: enrollment
 * with setup keys, the control channel handshake, a snapshot per connection and deltas to everyone
 * when a device joins, changes endpoints or is removed. Knobs let tests misbehave on purpose.
 */
export interface DoubleDevice {
  id: string;
  name: string;
  publicKey: string;
  address: string;
  endpoints: string[];
  /** Set by a rotation (or by a test: an admin re-key). */
  keyChange?: KeyChange;
}

/**
 * What the double does with a `rotate-key` whose signature verifies: commit and answer, refuse, or
 * commit and drop the connection without answering (a crash or a lost link after the commit).
 */
export type RotationMode = 'accept' | 'refuse' | 'commit-and-drop';

interface Session {
  ws: WebSocket;
  deviceId: string | null;
  serial: number;
  authed: boolean;
}

export class BrokerDouble {
  readonly keys: KeyPair = generateKeyPair();
  readonly setupKeys = new Set<string>(['test-setup-key-0001']);
  readonly devices = new Map<string, DoubleDevice>();
  readonly sessions = new Set<Session>();
  /** Every hello received, for tests that count (re)connections. */
  readonly hellos: Array<{
    deviceId: string;
    publicKey: string;
    lastSerial?: number;
    resume?: string;
    protocolVersion: number;
    at: number;
  }> = [];
  /** Versions taken in a hello or enrollment; `(v) => v === 1`: a broker from before capability versions. */
  acceptsVersion: (version: number) => boolean = () => true;
  /** ChallengeMessage.capabilityVersion; undefined: a broker from before capability versions. */
  capabilityVersion: number | undefined = CAPABILITY_VERSION;
  /**
   * Hands out resume tokens (`tok-<serial>`) and answers a hello naming the last one with a delta
   * on top of its serial (all peers again, as upserts) instead of a snapshot.
   */
  resumes = false;
  /** Refuses a hello that carries a resume token, as a broker from before them does (badMessage). */
  refuseResume = false;
  /** Every rotate-key received, and what the double made of it. */
  readonly rotations: Array<{ deviceId: string; newKey: string; outcome: 'rotated' | 'refused' }> = [];
  rotationMode: RotationMode = 'accept';
  /** Called as a rotate-key arrives, before anything is decided. */
  onRotateKey: ((deviceId: string, newKey: string) => void) | null = null;
  /** Endpoints messages received, per device. */
  readonly endpointReports: Array<{ deviceId: string; endpoints: string[] }> = [];
  /** Pings received from devices. */
  pings = 0;
  /** `path-state` reports received (the dashboard topology), per device. */
  readonly pathStates: Array<{ deviceId: string; msg: PathStateMessage }> = [];
  /** ChallengeMessage.features; [] is a broker from before any (it refuses `path-state`, `advertise`). */
  features: string[] = [BROKER_FEATURES.pathState];
  /** `advertise` messages received (only with BROKER_FEATURES.routes in `features`). */
  readonly advertisements: Array<{ deviceId: string; msg: AdvertiseMessage }> = [];
  /** Sign challenges with this key instead of the real one (an impostor). */
  impostorKeys: KeyPair | null = null;
  /** Accepts the auth proof but sends no snapshot (a broker deep in a reconnection storm). */
  holdSnapshots = false;
  /** Device sign-ins (RFC 8628); tests approve or deny them. */
  readonly signIns = new SignInDouble(this.keys, (data) => this.enrollDevice(data));
  /** Awaited after a sign-in answer is decided and before it is sent (a test holds a grant in flight). */
  signInGate: (() => Promise<void>) | null = null;
  /** New devices wait for an admin's approval (as an account that requires it, for a member's device). */
  requireApproval = false;
  /** Devices enrolled as waiting for an admin's approval; their connections are refused until approved. */
  readonly pendingApproval = new Set<string>();
  /** Sign-in answers sent so far. */
  signInAnswers = 0;
  /** Auth proofs that verified. */
  authed = 0;
  private server: Server | null = null;
  private wss: WebSocketServer | null = null;
  private nextHost = 1;

  constructor(private readonly cert: SelfSignedCert) {}

  /** Listens on 127.0.0.1 (port 0 = any) or on a unix socket path. Returns the port (0 for unix). */
  async listen(where: number | string = 0): Promise<number> {
    const server = createServer({ key: this.cert.key, cert: this.cert.cert }, (req, res) => {
      if (req.method === 'GET' && req.url === API_PATHS.info) {
        const info: BrokerInfo = {
          protocolVersion: this.capabilityVersion ?? 1,
          version: 'double',
          brokerPublicKey: this.keys.publicKey,
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info));
        return;
      }
      if (req.method === 'POST' && this.signIns.handles(req.url)) {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c.toString();
        });
        req.on('end', async () => {
          const [status, json] = this.signIns.answer(req.url!, body, `https://${req.headers.host}`);
          await this.signInGate?.();
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
          this.signInAnswers += 1;
        });
        return;
      }
      if (req.method === 'POST' && req.url === API_PATHS.enroll) {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c.toString();
        });
        req.on('end', () => {
          const [status, json] = this.enroll(body);
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
        });
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statusCode: 404, error: 'Not Found', message: 'no such route' }));
    });
    const wss = new WebSocketServer({ server, path: API_PATHS.control });
    wss.on('connection', (ws) => this.onConnection(ws));
    this.server = server;
    this.wss = wss;
    await new Promise<void>((resolve) => {
      if (typeof where === 'string') server.listen(where, resolve);
      else server.listen(where, '127.0.0.1', resolve);
    });
    return typeof where === 'string' ? 0 : (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.ws.terminate();
    this.wss?.close();
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    this.server = null;
  }

  /** Drops every control connection (as a broker restart would). */
  dropAll(): void {
    for (const s of this.sessions) s.ws.terminate();
  }

  connectedDevices(): string[] {
    return [...this.sessions].filter((s) => s.authed && s.deviceId).map((s) => s.deviceId!);
  }

  /** Sends a delta to one device's sessions; `serialOffset` > 1 simulates a lost delta. */
  sendDelta(deviceId: string, delta: Omit<DeltaMessage, 'type' | 'serial'>, serialOffset = 1): void {
    for (const s of this.sessions) {
      if (s.deviceId !== deviceId || !s.authed) continue;
      s.serial += serialOffset;
      const resume = this.resumes ? { resume: `tok-${s.serial}` } : {};
      this.send(s.ws, { type: 'delta', serial: s.serial, ...resume, ...delta });
    }
  }

  /** Sends any server message to one device's authenticated sessions (punch, relay, ...). */
  sendMessage(deviceId: string, msg: ServerMessage): void {
    for (const s of this.sessions) if (s.deviceId === deviceId && s.authed) this.send(s.ws, msg);
  }

  /** Removes a device: closes its sessions with deviceRemoved and tells everyone else. */
  removeDevice(deviceId: string): void {
    this.devices.delete(deviceId);
    for (const s of this.sessions) {
      if (s.deviceId === deviceId) s.ws.close(CloseCode.deviceRemoved, 'device removed');
    }
    this.broadcast(deviceId, { upsert: [], remove: [deviceId] });
  }

  /** Every other device may open everything (the default policy). */
  allowAll(selfId: string): PeerAccess[] {
    const peers = [...this.devices.keys()].filter((id) => id !== selfId);
    return peers.length > 0 ? [{ peers, in: ALLOW_ALL, out: ALLOW_ALL }] : [];
  }

  peerOf(d: DoubleDevice): NetmapPeer {
    return {
      id: d.id,
      name: d.name,
      dnsName: `${d.name}.acme.trellis.test`,
      publicKey: d.publicKey,
      address: d.address,
      allowedIps: [`${d.address}/32`],
      endpoints: d.endpoints,
      online: this.connectedDevices().includes(d.id),
      ...(d.keyChange ? { keyChange: d.keyChange } : {}),
    };
  }

  /** A `rotate-key` from an authenticated session: verified as the broker does, then `rotationMode`. */
  private rotateKey(session: Session, newKey: string, signature: string): void {
    const d = this.devices.get(session.deviceId!)!;
    this.onRotateKey?.(d.id, newKey);
    const proof = { deviceId: d.id, address: d.address, previousKey: d.publicKey, newKey };
    const taken = [...this.devices.values()].some((o) => o.publicKey === newKey);
    if (this.rotationMode === 'refuse' || taken || !verifyKeyRotation(proof, signature)) {
      this.rotations.push({ deviceId: d.id, newKey, outcome: 'refused' });
      session.ws.close(CloseCode.rotationRefused, 'key rotation refused');
      return;
    }
    d.keyChange = { kind: 'rotated', previousKey: d.publicKey, signature };
    d.publicKey = newKey;
    this.rotations.push({ deviceId: d.id, newKey, outcome: 'rotated' });
    if (this.rotationMode === 'commit-and-drop') session.ws.terminate();
    else this.send(session.ws, { type: 'key-rotated', newKey });
    this.broadcast(d.id, { upsert: [this.peerOf(d)], remove: [] });
  }

  private enroll(body: string): [number, object] {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return [400, { statusCode: 400, error: 'Bad Request', message: 'body is not JSON' }];
    }
    const req = EnrollRequest.safeParse(json);
    if (!req.success) return [400, { statusCode: 400, error: 'Bad Request', message: req.error.message }];
    const version = req.data.protocolVersion;
    if (!this.acceptsVersion(version))
      return [
        400,
        { statusCode: 400, error: 'Bad Request', message: refusal(version), code: 'protocol_mismatch' },
      ];
    if (!this.setupKeys.has(req.data.setupKey)) {
      return [
        401,
        { statusCode: 401, error: 'Unauthorized', message: 'setup key is invalid, expired or revoked' },
      ];
    }
    const proof = req.data.proof;
    const k = this.keys;
    if (
      !proof ||
      !verifyEnrollProof(k.privateKey, k.publicKey, req.data.publicKey, req.data.setupKey, proof, Date.now())
    ) {
      return [401, { statusCode: 401, error: 'Unauthorized', message: 'no valid proof of the private key' }];
    }
    return [200, this.enrollDevice(req.data)];
  }

  /** Enrolls a device (a new one, or the one with that key again) and answers as the broker does. */
  enrollDevice(data: { publicKey: string; name?: string | undefined; endpoints: string[] }): EnrollResponse {
    let device = [...this.devices.values()].find((d) => d.publicKey === data.publicKey);
    if (!device) {
      const n = this.nextHost++;
      device = {
        id: randomUUID(),
        name: (data.name ?? `device-${n}`).toLowerCase(),
        publicKey: data.publicKey,
        address: `100.64.0.${n}`,
        endpoints: data.endpoints,
      };
      this.devices.set(device.id, device);
      if (this.requireApproval) this.pendingApproval.add(device.id);
    }
    return {
      deviceId: device.id,
      accountId: 'acct-1',
      accountName: 'acme',
      name: device.name,
      dnsName: `${device.name}.acme.trellis.test`,
      address: device.address,
      overlayPrefix: OVERLAY_PREFIX,
      brokerPublicKey: this.keys.publicKey,
      approved: !this.pendingApproval.has(device.id),
    };
  }

  private onConnection(ws: WebSocket): void {
    const session: Session = { ws, deviceId: null, serial: 0, authed: false };
    this.sessions.add(session);
    let clientNonce = '';
    let brokerNonce = '';
    let auth: BrokerAuthenticator | null = null;
    let resumeFrom: number | null = null;
    ws.on('close', () => {
      this.sessions.delete(session);
      if (session.authed && session.deviceId) this.broadcastOnline(session.deviceId);
    });
    ws.on('message', (data) => {
      const parsed = ClientMessage.safeParse(JSON.parse(data.toString()));
      if (!parsed.success) return ws.close(CloseCode.badMessage, 'bad message');
      const msg = parsed.data;
      if (msg.type === 'hello') {
        const device = this.devices.get(msg.deviceId);
        this.hellos.push({
          deviceId: msg.deviceId,
          publicKey: msg.publicKey,
          ...(msg.lastSerial !== undefined ? { lastSerial: msg.lastSerial } : {}),
          ...(msg.resume !== undefined ? { resume: msg.resume } : {}),
          protocolVersion: msg.protocolVersion,
          at: Date.now(),
        });
        if (!this.acceptsVersion(msg.protocolVersion))
          return ws.close(CloseCode.protocolMismatch, refusal(msg.protocolVersion));
        if (this.refuseResume && msg.resume !== undefined)
          return ws.close(CloseCode.badMessage, 'unrecognized key: resume');
        resumeFrom = this.resumes && msg.resume === `tok-${msg.lastSerial}` ? msg.lastSerial! : null;
        if (!device || device.publicKey !== msg.publicKey)
          return ws.close(CloseCode.authFailed, 'unknown device');
        session.deviceId = device.id;
        clientNonce = msg.clientNonce;
        brokerNonce = newNonce();
        const signer = this.impostorKeys ?? this.keys;
        auth = new BrokerAuthenticator(signer.privateKey, this.keys.publicKey, device.publicKey);
        this.send(ws, {
          type: 'challenge',
          brokerNonce,
          brokerProof: auth.brokerProof(clientNonce, brokerNonce),
          ...(this.features.length > 0 ? { features: this.features } : {}),
          ...(this.capabilityVersion !== undefined ? { capabilityVersion: this.capabilityVersion } : {}),
        });
        return;
      }
      if (msg.type === 'auth') {
        if (!auth?.verifyDevice(msg.proof, clientNonce, brokerNonce)) {
          return ws.close(CloseCode.authFailed, 'authentication failed');
        }
        if (session.deviceId && this.pendingApproval.has(session.deviceId)) {
          return ws.close(CloseCode.pendingApproval, 'waiting for an admin to approve this device');
        }
        this.authed += 1;
        if (this.holdSnapshots) return;
        session.authed = true;
        session.serial = resumeFrom === null ? 1 : resumeFrom + 1;
        const self = this.devices.get(session.deviceId!)!;
        const selfView = {
          id: self.id,
          name: self.name,
          dnsName: `${self.name}.acme.trellis.test`,
          address: self.address,
          accountName: 'acme',
          overlayPrefix: OVERLAY_PREFIX,
        } as const;
        const peers = [...this.devices.values()].filter((d) => d.id !== self.id).map((d) => this.peerOf(d));
        const resume = this.resumes ? { resume: `tok-${session.serial}` } : {};
        if (resumeFrom !== null) {
          this.send(ws, {
            type: 'delta',
            serial: session.serial,
            base: resumeFrom,
            ...resume,
            upsert: peers,
            remove: [],
            self: selfView,
            access: this.allowAll(self.id),
          });
        } else {
          this.send(ws, {
            type: 'netmap',
            serial: session.serial,
            ...resume,
            self: selfView,
            peers,
            access: this.allowAll(self.id),
          });
        }
        this.broadcastOnline(self.id);
        return;
      }
      if (!session.authed) return ws.close(CloseCode.authFailed, 'not authenticated');
      if (msg.type === 'endpoints') {
        const d = this.devices.get(session.deviceId!);
        this.endpointReports.push({ deviceId: session.deviceId!, endpoints: msg.endpoints });
        if (d) {
          d.endpoints = msg.endpoints;
          this.broadcast(d.id, { upsert: [this.peerOf(d)], remove: [] });
        }
        return;
      }
      if (msg.type === 'rotate-key') return this.rotateKey(session, msg.newKey, msg.signature);
      if (msg.type === 'advertise') {
        if (!this.features.includes(BROKER_FEATURES.routes))
          return ws.close(CloseCode.badMessage, 'bad message');
        this.advertisements.push({ deviceId: session.deviceId!, msg });
        return;
      }
      if (msg.type === 'path-state') {
        // As a broker from before it does: refused, the connection closed.
        if (!this.features.includes(BROKER_FEATURES.pathState))
          return ws.close(CloseCode.badMessage, 'bad message');
        this.pathStates.push({ deviceId: session.deviceId!, msg });
      }
      if (msg.type === 'ping') {
        this.pings++;
        if (!this.deaf) this.send(ws, { type: 'pong', t: msg.t, serverTime: Date.now() });
      }
    });
  }

  private broadcastOnline(deviceId: string): void {
    const d = this.devices.get(deviceId);
    if (d) this.broadcast(deviceId, { upsert: [this.peerOf(d)], remove: [] });
  }

  /** Sends a delta to every authenticated session except the device's own. */
  private broadcast(fromDevice: string, delta: Omit<DeltaMessage, 'type' | 'serial'>): void {
    for (const s of this.sessions) {
      if (!s.authed || s.deviceId === fromDevice || !s.deviceId || !this.devices.has(s.deviceId)) continue;
      s.serial += 1;
      const ids = delta.upsert.map((p) => p.id);
      const access = ids.length > 0 ? [{ peers: ids, in: ALLOW_ALL, out: ALLOW_ALL }] : undefined;
      this.send(s.ws, { type: 'delta', serial: s.serial, ...(access ? { access } : {}), ...delta });
    }
  }

  /** Leaves pings unanswered (a connection that died on the way, as after a network change). */
  deaf = false;

  /** Rewrites every outgoing frame (a hostile broker): gets a copy it may change in place. */
  tamper: ((frame: Record<string, unknown>) => void) | null = null;

  private send(ws: WebSocket, msg: ServerMessage): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (!this.tamper) {
      ws.send(JSON.stringify(msg));
      return;
    }
    const copy = JSON.parse(JSON.stringify(msg)) as Record<string, unknown>;
    this.tamper(copy);
    ws.send(JSON.stringify(copy));
  }
}

/** What a broker from before capability versions said to any version but its own. */
function refusal(version: number): string {
  return `protocol version ${version} not supported (broker speaks 1)`;
}
