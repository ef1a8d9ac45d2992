import { randomUUID } from 'node:crypto';
import { BrokerAuthenticator, newNonce } from '@trellis/crypto';
import {
  type AdvertiseMessage,
  BROKER_FEATURES,
  CAPABILITY_VERSION,
  ClientMessage,
  CloseCode,
  COMPACT_NETMAP_CAPABILITY,
  type HelloMessage,
  type PathReportMessage,
  type PathStateMessage,
  type PathWantMessage,
  type RotateKeyMessage,
  type ServerMessage,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { DomainError } from '../domain/errors';
import { withObservedCandidate } from '../domain/observed-candidate';
import type { BrokerKey } from '../keys/broker-key';
import type { BrokerMetrics } from '../metrics';
import type { DevicesService } from '../services/devices.service';
import type { ControlHub } from './control-hub';
import type { ControlSession } from './control-session';
import { DEVICE_MESSAGE_BURST, DEVICE_MESSAGES_PER_SECOND, MessageBudget } from './message-budget';
import type { OfflineGrace } from './offline-grace';
import { PacedFrameSender } from './paced-frame-sender';
import { parseFrame, protocolMismatch } from './parse-frame';
import { RttMeter } from './rtt-meter';

export interface ControlConnectionDeps {
  devices: DevicesService;
  hub: ControlHub;
  brokerKey: BrokerKey;
  metrics: BrokerMetrics;
  logger: Logger;
  authTimeoutMs: number;
  /** Prefix of connection ids made by this instance. */
  instanceId: string;
  /** A `path` report or a `want-path` request (the pair-path logic). */
  onPath?: (deviceId: string, msg: PathReportMessage | PathWantMessage) => void;
  /** A `path-state` report (the live topology). */
  onPathState?: (deviceId: string, msg: PathStateMessage) => void;
  /** An `advertise` (routes offered); given, the challenge lists BROKER_FEATURES.routes. */
  onAdvertise?: (deviceId: string, msg: AdvertiseMessage, address: string | null) => Promise<void>;
  /** Marks devices offline once their connection closed (after a grace, unless closed with closeNow). */
  offlineGrace: OfflineGrace;
  /** The device has its netmap: this connection is admitted (ControlServer counts those that are not). */
  onAttached?: (conn: ControlConnection) => void;
}

type State =
  | { phase: 'hello' }
  | {
      phase: 'auth';
      hello: HelloMessage;
      brokerNonce: string;
      auth: BrokerAuthenticator;
      accountId: string;
      accountName: string;
      /** False: the device waits for an admin's approval (told so once it has proved its key). */
      approved: boolean;
    }
  | { phase: 'ready'; session: ControlSession }
  | { phase: 'closed' };

/**
 * One WebSocket control connection: hello → challenge → auth → snapshot, then endpoints and pings.
 * Messages are handled one at a time in arrival order; anything unexpected closes the connection
 * with the matching CloseCode and a log line.
 */
export class ControlConnection {
  private state: State = { phase: 'hello' };
  private queue: Promise<void> = Promise.resolve();
  private readonly authTimer: NodeJS.Timeout;
  private readonly sender: PacedFrameSender;
  private readonly budget = new MessageBudget(DEVICE_MESSAGE_BURST, DEVICE_MESSAGES_PER_SECOND, Date.now());
  readonly connectionId: string;
  lastActivity = Date.now();
  /** WebSocket ping round trip: how far ahead a punch's shared start must be. */
  private readonly rtt: RttMeter;
  /** The agent's latest relay round trips, for the relay choice (memory only: they change with the network). */
  private relayRtts: Readonly<Record<string, number>> = {};

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: ControlConnectionDeps,
    private readonly remote: string,
    private readonly remoteAddress?: string,
  ) {
    this.connectionId = `${deps.instanceId}:${randomUUID()}`;
    this.sender = new PacedFrameSender(ws);
    this.authTimer = setTimeout(
      () => this.fail(CloseCode.authTimeout, 'auth_timeout', 'authentication timed out'),
      deps.authTimeoutMs,
    );
    ws.on('message', (data, isBinary) => {
      if (this.state.phase === 'closed') return;
      this.lastActivity = Date.now();
      if (!this.budget.take(this.lastActivity)) {
        this.fail(CloseCode.rateLimited, 'rate_limited', 'too many control messages');
        return;
      }
      const text = isBinary ? null : data.toString();
      this.queue = this.queue.then(() => this.handle(text)).catch((err) => this.internalError(err));
    });
    this.rtt = new RttMeter(ws);
    this.rtt.measure();
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => deps.logger.warn({ remote, err: err.message }, 'control connection error'));
  }

  /** The agent's capability version (its hello's, once served): what later versions gate frames by. */
  capabilityVersion: number | undefined;

  get deviceId(): string | undefined {
    if (this.state.phase === 'ready') return this.state.session.deviceId;
    if (this.state.phase === 'auth') return this.state.hello.deviceId;
    return undefined;
  }

  private async handle(text: string | null): Promise<void> {
    if (this.state.phase === 'closed') return;
    const parsed = parseFrame(ClientMessage, text);
    if (!parsed.ok) return this.fail(CloseCode.badMessage, parsed.kind, parsed.error);
    const { msg } = parsed;
    this.deps.metrics.controlMessagesIn.inc({ type: msg.type });
    switch (this.state.phase) {
      case 'hello':
        if (msg.type !== 'hello')
          return this.fail(CloseCode.badMessage, 'bad_message', `expected hello, got ${msg.type}`);
        return this.onHello(msg);
      case 'auth':
        if (msg.type !== 'auth')
          return this.fail(CloseCode.badMessage, 'bad_message', `expected auth, got ${msg.type}`);
        return this.onAuth(msg.proof);
      case 'ready':
        if (msg.type === 'ping') {
          this.rtt.measure();
          return this.sendMessage({ type: 'pong', t: msg.t, serverTime: Date.now() });
        }
        if (msg.type === 'endpoints')
          return this.deps.devices.setEndpoints(
            this.state.session.deviceId,
            withObservedCandidate(msg.endpoints, this.remoteAddress),
          );
        if (msg.type === 'netinfo') {
          if (msg.relayRttMs) this.relayRtts = msg.relayRttMs;
          return this.deps.devices.setLearned(
            { deviceId: this.state.session.deviceId },
            'portmapped',
            msg.portMapped ? [msg.portMapped] : [],
          );
        }
        if (msg.type === 'path' || msg.type === 'want-path')
          return this.deps.onPath?.(this.state.session.deviceId, msg);
        if (msg.type === 'path-state') return this.deps.onPathState?.(this.state.session.deviceId, msg);
        if (msg.type === 'rotate-key') return this.onRotateKey(this.state.session, msg);
        if (msg.type === 'advertise' && this.deps.onAdvertise)
          return this.deps.onAdvertise(this.state.session.deviceId, msg, this.remoteAddress ?? null);
        return this.fail(CloseCode.badMessage, 'bad_message', `unexpected ${msg.type} after authentication`);
    }
  }

  private async onHello(hello: HelloMessage): Promise<void> {
    const mismatch = protocolMismatch(hello.protocolVersion);
    if (mismatch) return this.fail(CloseCode.protocolMismatch, 'protocol_mismatch', mismatch);
    this.capabilityVersion = hello.protocolVersion;
    const found = await this.deps.devices.forAuth(hello.deviceId);
    if (!found || found.device.publicKey !== hello.publicKey) {
      return this.fail(CloseCode.authFailed, 'auth_failed', 'unknown device or key');
    }
    const { brokerKey } = this.deps;
    const auth = new BrokerAuthenticator(brokerKey.privateKey, brokerKey.publicKey, found.device.publicKey);
    const brokerNonce = newNonce();
    this.state = {
      phase: 'auth',
      hello,
      brokerNonce,
      auth,
      accountId: found.device.accountId,
      accountName: found.accountName,
      approved: found.device.approved,
    };
    const brokerProof = auth.brokerProof(hello.clientNonce, brokerNonce);
    const features = [BROKER_FEATURES.pathState, ...(this.deps.onAdvertise ? [BROKER_FEATURES.routes] : [])];
    this.sendMessage({
      type: 'challenge',
      brokerNonce,
      brokerProof,
      features,
      capabilityVersion: CAPABILITY_VERSION,
    });
  }

  private async onAuth(proof: string): Promise<void> {
    if (this.state.phase !== 'auth') return;
    const { hello, brokerNonce, auth, accountId, accountName, approved } = this.state;
    if (!auth.verifyDevice(proof, hello.clientNonce, brokerNonce)) {
      return this.fail(CloseCode.authFailed, 'auth_failed', 'device proof does not verify');
    }
    if (!approved) {
      return this.fail(
        CloseCode.pendingApproval,
        'pending_approval',
        'waiting for an admin to approve this device',
      );
    }
    clearTimeout(this.authTimer);
    const session: ControlSession = {
      deviceId: hello.deviceId,
      accountId,
      connectionId: this.connectionId,
      publicKey: hello.publicKey,
      serial: 0,
      compact: hello.protocolVersion >= COMPACT_NETMAP_CAPABILITY,
      rttMs: () => this.rtt.rttMs(),
      relayRttMs: () => this.relayRtts,
      send: (frame, type) => this.sendRaw(frame, type),
      close: (code, reason) => this.close(code, reason),
    };
    this.state = { phase: 'ready', session };
    // Only under the key just proven: a rotation or re-key may have committed since the hello.
    const onlineSerial = await this.deps.devices.markOnline(
      hello.deviceId,
      this.connectionId,
      hello.publicKey,
    );
    if (onlineSerial === undefined) {
      if (await this.deps.devices.forAuth(hello.deviceId))
        return this.fail(CloseCode.authFailed, 'auth_failed', "the device's key changed while connecting");
      return this.fail(CloseCode.deviceRemoved, 'device_removed', 'device removed');
    }
    // The snapshot must be newer than anything this device saw before, even if bus events from other
    // instances are still in flight: at least this change's serial and past the serial it reports.
    session.serial = Math.max(onlineSerial, (hello.lastSerial ?? -1) + 1);
    // The socket may have closed while the database answered: its offline mark (armed by onClose
    // before this connection held the device) is armed again, now that the online update is in.
    if (this.isClosed()) return this.markClosed(session);
    const resume =
      hello.resume !== undefined && hello.lastSerial !== undefined
        ? { token: hello.resume, lastSerial: hello.lastSerial }
        : undefined;
    const how = await this.deps.hub.attach(session, accountName, resume);
    if (how === null) return this.fail(CloseCode.deviceRemoved, 'device_removed', 'device removed');
    this.deps.metrics.netmapStarts.inc({ how: resume === undefined ? 'asked_snapshot' : how.how });
    if (how.how === 'snapshot' && how.refused) this.deps.metrics.resumesRefused.inc({ reason: how.refused });
    if (this.isClosed()) return this.markClosed(session);
    this.deps.metrics.connectedDevices.inc();
    this.attached = true;
    this.deps.onAttached?.(this);
    // The agent starts its heartbeat once it has the snapshot: its silence counts from here.
    this.lastActivity = Date.now();
    this.deps.logger.info(
      {
        deviceId: hello.deviceId,
        remote: this.remote,
        netmap: how.how,
        capabilityVersion: hello.protocolVersion,
      },
      'device connected',
    );
  }

  private attached = false;

  /**
   * The device's own key rotation. Committed: answered with `key-rotated`, and the connection stays
   * open under the old key until the agent reconnects with the new one. Refused: closed with
   * rotationRefused and the reason; nothing changed.
   */
  private async onRotateKey(session: ControlSession, msg: RotateKeyMessage): Promise<void> {
    const holder = { publicKey: session.publicKey!, connectionId: session.connectionId };
    try {
      await this.deps.devices.rotateKey(session.deviceId, msg.newKey, msg.signature, holder, {
        kind: 'device',
        deviceId: session.deviceId,
        address: this.remoteAddress ?? null,
      });
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return this.fail(
        CloseCode.rotationRefused,
        `key_rotation_${err.kind}`,
        `key rotation refused: ${err.message}`,
      );
    }
    this.sendMessage({ type: 'key-rotated', newKey: msg.newKey });
    this.deps.logger.info(
      { deviceId: session.deviceId, previousKey: session.publicKey, newKey: msg.newKey },
      'device rotated its key',
    );
  }

  /** Authenticated, waiting for the broker's own work (database, snapshot): not the agent's silence. */
  get awaitingBroker(): boolean {
    return this.state.phase === 'ready' && !this.attached && !this.isClosed();
  }
  private offline: Promise<void> = Promise.resolve();

  /** Resolves once queued messages and the offline update after close have finished. */
  async drained(): Promise<void> {
    await this.queue;
    await this.offline;
  }

  private isClosed(): boolean {
    return (this.state.phase as State['phase']) === 'closed';
  }

  /** A message built here: typed as proto's ServerMessage, so the compiler checks every field. */
  private sendMessage(msg: ServerMessage): void {
    this.sendRaw(JSON.stringify(msg), msg.type);
  }

  /** A frame serialised elsewhere (netmap and delta frames, built once for many devices). */
  private sendRaw(frame: string | Buffer, type: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.sender.send(frame);
    this.deps.metrics.controlMessagesOut.inc({ type });
  }

  private fail(code: number, kind: string, message: string): void {
    this.deps.metrics.error(kind);
    this.deps.logger.warn({ remote: this.remote, deviceId: this.deviceId, code, kind }, message);
    this.close(code, message);
  }

  /** Closes with the device marked offline at once (the broker stops or lost its lease). */
  closeNow(code: number, reason: string): void {
    this.offlineNow = true;
    this.close(code, reason);
  }

  private offlineNow = false;

  close(code: number, reason: string): void {
    if (this.state.phase === 'closed' && this.ws.readyState !== this.ws.OPEN) return;
    // Close reasons are limited to 123 bytes.
    this.ws.close(code, reason.slice(0, 120));
    this.onClose();
  }

  private onClose(): void {
    clearTimeout(this.authTimer);
    const previous = this.state;
    if (previous.phase === 'closed') return;
    this.state = { phase: 'closed' };
    if (previous.phase !== 'ready') return;
    if (this.attached) this.deps.metrics.connectedDevices.dec();
    this.attached = false;
    void this.markClosed(previous.session);
  }

  /**
   * The session's connection is gone: out of the hub, and its device marked offline after the grace
   * (a client that gave up mid-connect is about to retry; at once after closeNow). Idempotent.
   */
  private markClosed(session: ControlSession): Promise<void> {
    this.deps.hub.detach(session);
    const { offlineGrace } = this.deps;
    this.offline = this.offlineNow
      ? offlineGrace.now(session.deviceId, session.connectionId)
      : offlineGrace.closed(session.deviceId, session.connectionId);
    return this.offline;
  }

  private internalError(err: unknown): void {
    this.deps.metrics.error('internal');
    this.deps.logger.error(
      { remote: this.remote, err: err instanceof Error ? err.stack : String(err) },
      'control handler failed',
    );
    this.close(1011, 'internal error');
  }
}
