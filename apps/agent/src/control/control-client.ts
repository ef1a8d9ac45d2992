import type { Agent } from 'node:https';
import type { KeyPair } from '@trellis/crypto';
import {
  type AdvertiseMessage,
  AUTH_TIMEOUT_MS,
  type BrokerRotation,
  type BrokerTarget,
  CapabilityFallback,
  type ChallengeMessage,
  type ClientMessage,
  CloseCode,
  type DeltaMessage,
  type NetinfoMessage,
  type NetmapMessage,
  type ResolveHost,
  SNAPSHOT_TIMEOUT_MS,
} from '@trellis/proto';
import { resolveHostAddresses } from '@trellis/tls';
import { describeTarget } from '../trust/broker-url';
import { AuthKeys } from './auth-keys';
import { closeOutcome, rotationError } from './close-outcome';
import { ControlAnnouncements, type PathMessage } from './control-announcements';
import type { ControlClientOptions } from './control-client-options';
import { ControlHeartbeat, DEFAULT_CLOCK_PINGS } from './control-heartbeat';
import type { ControlLink } from './control-link';
import { ControlSocket, decodeServerMessage } from './control-socket';
import { NetmapTracker } from './netmap-tracker';
import { ReconnectSchedule } from './reconnect-schedule';
import { ROTATION_ANSWER_MS, RotationRequest } from './rotation-request';
import { Deadline, realTimers, type Timers } from './timers';

export type { ControlClientHandlers, ControlClientOptions } from './control-client-options';

/**
 * The agent's side of the control channel: hello → challenge (the broker proves its key) → auth →
 * netmap snapshot → deltas. A lost connection or failed attempt goes on at once to the next broker
 * instance (BrokerRotation); only after every one failed does it wait, with jittered exponential
 * backoff. A serial gap forces a reconnect, which brings a fresh snapshot.
 */
export class ControlClient {
  private readonly timers: Timers;
  private readonly reconnect: ReconnectSchedule;
  private readonly resolveHost: ResolveHost;
  private agent: Agent;
  private readonly tracker = new NetmapTracker();
  private readonly keys: AuthKeys;
  private readonly rotation: RotationRequest;
  private link: ControlLink = { phase: 'idle' };
  private stopped = true;
  /** Until the snapshot: AUTH_TIMEOUT_MS for the challenge, then SNAPSHOT_TIMEOUT_MS for the netmap. */
  private readonly authDeadline: Deadline;
  private readonly heartbeat: ControlHeartbeat;
  private readonly announcements = new ControlAnnouncements(
    (msg) => this.send(msg),
    () => (this.link.phase === 'ready' ? this.link.features : null),
  );
  /** Our capability version, or 1 for a broker from before them, which refuses ours (4426). */
  private readonly capability = new CapabilityFallback((broker) =>
    this.opts.logger.warn({ broker }, 'broker refused our capability version; speaking version 1 to it'),
  );
  lastError: string | null = null;

  constructor(private readonly opts: ControlClientOptions) {
    this.timers = opts.timers ?? realTimers;
    this.reconnect = new ReconnectSchedule(opts.brokerUrls, opts.backoff, this.timers, opts.logger, () =>
      this.connect(),
    );
    this.resolveHost = opts.resolveHost ?? ((host) => resolveHostAddresses(host));
    this.agent = opts.agent;
    this.heartbeat = new ControlHeartbeat(
      this.timers,
      (t) => this.send({ type: 'ping', t }),
      () => this.connectionDied(),
    );
    this.keys = new AuthKeys(opts.deviceId, opts.keyPair, opts.brokerPublicKey);
    this.rotation = new RotationRequest(this.timers);
    this.authDeadline = new Deadline(this.timers);
  }

  /** The key the current (or next) connection authenticates with. */
  get authKey(): KeyPair {
    return this.keys.key;
  }

  /**
   * A key the broker may hold instead of ours (a rotation whose outcome we do not know): each time
   * the broker refuses the key in use (authFailed, keyChanged), the next connection tries the other.
   */
  setFallbackKey(key: KeyPair | null): void {
    this.keys.setFallback(key);
  }

  /**
   * Sends a key rotation (signature: see RotateKeyMessage) and resolves once the broker committed
   * it. Rejects with KeyRotationRefused when the broker refused it; with another error when the
   * connection ended first or no answer came within ROTATION_ANSWER_MS (the connection is then
   * dropped, so the next one settles which key the broker holds).
   */
  rotateKey(newKey: string, signature: string, timeoutMs = ROTATION_ANSWER_MS): Promise<void> {
    if (this.link.phase !== 'ready') return Promise.reject(new Error('not connected to the broker'));
    if (this.rotation.busy)
      return Promise.reject(new Error('a key rotation is already waiting for the broker'));
    const answer = this.rotation.start(newKey, timeoutMs, () =>
      this.fail(CloseCode.normal, 'the broker did not answer the key rotation in time'),
    );
    this.send({ type: 'rotate-key', newKey, signature });
    return answer;
  }

  get connected(): boolean {
    return this.link.phase === 'ready';
  }

  /** The broker instances: their URLs, the one connected to (or last tried), every address known. */
  get brokers(): Pick<BrokerRotation, 'urls' | 'current' | 'knownAddresses'> {
    return this.reconnect.rotation;
  }

  /** Another list of instances or another trust: reconnects, starting with the first URL. */
  setBrokers(urls: readonly string[], agent: Agent): void {
    this.reconnect.rotation.setUrls(urls);
    this.agent = agent;
    if (this.stopped) return;
    const wasReady = this.link.phase === 'ready';
    this.reconnect.cancel();
    this.teardown(CloseCode.normal, 'broker list changed');
    if (wasReady) this.opts.handlers.onDisconnected('broker list changed');
    this.connect();
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.reconnect.cancel();
    this.teardown(CloseCode.normal, 'agent stopping');
  }

  /** Remembers our local candidates and sends them now if connected, else on the next connection. */
  setEndpoints(endpoints: string[]): void {
    this.announcements.set({ type: 'endpoints', endpoints });
  }

  /**
   * This device's addresses changed (`hasAddress`: whether an address is still ours). A connection
   * from an address we no longer have is dead, and nothing says so: its keepalive probes leave with
   * that source, and the broker's reset goes back to it, to nobody (a device that moved to another
   * LAN); only the heartbeat would notice, seconds later. Reconnect now, and a reconnect that waits
   * out a backoff goes now too: the new network is what it was waiting for.
   */
  networkChanged(hasAddress: (address: string) => boolean): void {
    if (this.stopped) return;
    const local = 'socket' in this.link ? this.link.socket.localAddress : null;
    if (local !== null && !hasAddress(local))
      this.fail(CloseCode.normal, `this device no longer has the connection's address ${local}`);
    else this.heartbeat.probe();
    if (!this.reconnect.waiting) return;
    this.reconnect.cancel();
    this.connect();
  }

  /**
   * A ping went unanswered: the connection is dead, though nothing closed it (its path changed or
   * broke). The broker is not known to be down, so the new connection goes now, not after a backoff.
   */
  private connectionDied(): void {
    this.fail(CloseCode.heartbeatTimeout, 'broker did not answer a ping in time');
    if (this.stopped || !this.reconnect.waiting) return;
    this.reconnect.cancel();
    this.connect();
  }

  /** Something about the network changed: a ping that must be answered soon, else a new connection. */
  probe(): void {
    if (!this.stopped) this.heartbeat.probe();
  }

  /** Dials the next instance of the round; at a round's end resolves the names for a new one first. */
  private connect(): void {
    if (this.stopped) return;
    this.link = { phase: 'resolving' };
    this.reconnect.rotation.dial(this.resolveHost, (target) => this.open(target));
  }

  private open(target: BrokerTarget): void {
    this.opts.logger.debug({ broker: describeTarget(target) }, 'connecting to broker');
    const socket = new ControlSocket(target, this.agent, {
      onOpen: () => this.advance('await-challenge'),
      onMessage: (text) => this.onMessage(text),
      onError: (error) => {
        this.lastError = error;
      },
      onClose: (code, reason, error) => this.onClose(code, reason, error),
    });
    this.link = { phase: 'connecting', socket, features: new Set() };
  }

  /** The connection's next phase; entering await-challenge sends the hello. */
  private advance(phase: 'await-challenge' | 'await-netmap' | 'ready'): void {
    if (!('socket' in this.link)) return;
    this.link.phase = phase;
    if (phase === 'await-challenge') this.onOpen();
  }

  private onOpen(): void {
    this.heartbeat.heard();
    const resume = this.tracker.resumeToken ?? undefined;
    const version = this.capability.helloVersion(this.reconnect.rotation.current);
    this.send(this.keys.handshake.hello(this.tracker.lastSerial ?? this.opts.lastSerial, resume, version));
    this.authDeadline.set(AUTH_TIMEOUT_MS, () =>
      this.fail(CloseCode.authTimeout, 'broker did not complete authentication in time'),
    );
  }

  private onMessage(text: string | null): void {
    this.heartbeat.heard();
    const decoded = decodeServerMessage(text);
    if (!decoded.ok) {
      // Nothing of the frame is applied: WireGuard and the routes keep what they have.
      this.fail(CloseCode.badMessage, `broker sent a malformed control message: ${decoded.reason}`);
      return;
    }
    const msg = decoded.msg;
    switch (msg.type) {
      case 'challenge':
        this.onChallenge(msg);
        break;
      case 'netmap':
        this.onSnapshot(msg);
        break;
      case 'delta':
        this.onDelta(msg);
        break;
      case 'pong':
        this.opts.handlers.onClockSample?.({
          sentAt: msg.t,
          serverTime: msg.serverTime,
          receivedAt: this.timers.now(),
        });
        if (this.link.phase === 'ready') this.heartbeat.nextClockPing();
        break;
      case 'punch':
        if (this.link.phase === 'ready') this.opts.handlers.onPunch?.(msg);
        break;
      case 'relay':
        if (this.link.phase === 'ready') this.opts.handlers.onRelay?.(msg);
        break;
      case 'relay-release':
        if (this.link.phase === 'ready') this.opts.handlers.onRelayRelease?.(msg);
        break;
      case 'key-rotated':
        if (!this.rotation.answered(msg.newKey))
          this.opts.logger.warn({ newKey: msg.newKey }, 'broker confirmed a key rotation we did not ask for');
        break;
    }
  }

  private onChallenge(msg: ChallengeMessage): void {
    if (this.link.phase !== 'await-challenge') {
      this.fail(CloseCode.badMessage, 'unexpected challenge');
      return;
    }
    const auth = this.keys.handshake.answer(msg);
    if (!auth) {
      this.fail(
        CloseCode.authFailed,
        'broker failed to prove its identity (its key differs from the one pinned at enrollment)',
      );
      return;
    }
    if ('socket' in this.link) this.link.features = new Set(msg.features ?? []);
    this.capability.announced(msg.capabilityVersion);
    this.advance('await-netmap');
    this.send(auth);
    this.authDeadline.set(SNAPSHOT_TIMEOUT_MS, () =>
      this.fail(CloseCode.authTimeout, 'broker did not send the netmap in time'),
    );
  }

  private onSnapshot(msg: NetmapMessage): void {
    if (this.link.phase !== 'await-netmap' && this.link.phase !== 'ready') {
      this.fail(CloseCode.badMessage, 'netmap before authentication');
      return;
    }
    const netmap = this.tracker.applySnapshot(msg);
    if (this.link.phase === 'await-netmap') this.onReady();
    this.opts.handlers.onNetmap(netmap, 'snapshot');
  }

  private onDelta(msg: DeltaMessage): void {
    // The first frame of a resumed connection is a delta on top of the netmap held (its base).
    const resumed = this.link.phase === 'await-netmap' && msg.base !== undefined;
    if (this.link.phase !== 'ready' && !resumed) {
      this.fail(CloseCode.badMessage, 'delta before snapshot');
      return;
    }
    const result = this.tracker.applyDelta(msg);
    if (resumed && result.ok) this.onReady();
    if (!result.ok) {
      // Reconnecting is how we get a fresh snapshot; no need to wait for backoff.
      this.opts.logger.warn({ reason: result.reason }, 'netmap out of sync; reconnecting for a snapshot');
      this.teardown(CloseCode.normal, 'resync');
      this.reconnect.newRoundNow(this.lastError);
      return;
    }
    this.opts.handlers.onNetmap(result.netmap, 'delta');
  }

  private onReady(): void {
    this.authDeadline.clear();
    this.advance('ready');
    this.lastError = null;
    this.reconnect.connected();
    this.announcements.replay();
    this.heartbeat.start(this.opts.clockPings ?? DEFAULT_CLOCK_PINGS);
    this.opts.handlers.onConnected();
  }

  /**
   * The outcome of a path attempt, a want for one, or the peers' paths; dropped while disconnected
   * (the next attempt reports again, a want is repeated while its demand lasts, paths are reported
   * in full on every connect).
   */
  sendPath(report: PathMessage): void {
    this.announcements.sendNow(report);
  }

  /** What we know of our own NAT; remembered and sent again on every connection. */
  setNetinfo(netinfo: NetinfoMessage): void {
    this.announcements.set(netinfo);
  }

  /** The routes this device offers; remembered and sent again after every authentication. */
  setAdvertise(msg: AdvertiseMessage): void {
    this.announcements.set(msg);
  }

  private onClose(code: number, reason: string, socketError: string | null): void {
    const wasReady = this.link.phase === 'ready';
    this.rotation.fail(rotationError(code, reason, socketError));
    const outcome = closeOutcome(code, reason, socketError);
    // A broker from before resume tokens refuses a hello with one: the next hello asks for a snapshot.
    if (!wasReady && code === CloseCode.badMessage) this.tracker.forgetResume();
    this.cleanup();
    this.lastError = outcome.error;
    if (outcome.kind === 'removed') {
      this.stopped = true;
      this.opts.handlers.onDeviceRemoved();
      return;
    }
    const other = outcome.kind === 'key-refused' ? this.keys.swap() : null;
    if (other)
      this.opts.logger.warn({ publicKey: other.publicKey }, 'broker refused our key; trying the other one');
    if (wasReady) this.opts.handlers.onDisconnected(outcome.error);
    const target = this.reconnect.rotation.current;
    if (code === CloseCode.protocolMismatch && target && this.capability.refused()) this.open(target);
    else this.retry(wasReady);
  }

  private fail(code: number, reason: string): void {
    this.opts.logger.warn({ reason }, 'control connection failed');
    this.lastError = reason;
    const wasReady = this.link.phase === 'ready';
    this.teardown(code, reason);
    if (wasReady) this.opts.handlers.onDisconnected(reason);
    this.retry(wasReady);
  }

  private retry(wasReady: boolean): void {
    if (this.stopped) return;
    this.reconnect.afterFailure(wasReady, this.lastError);
  }

  /** Drops the socket without waiting for its close event (which is then ignored). */
  private teardown(code: number, reason: string): void {
    const link = this.link;
    this.cleanup();
    if ('socket' in link) link.socket.close(code, reason);
  }

  private cleanup(): void {
    if ('socket' in this.link) this.link.socket.detach();
    this.link = { phase: 'idle' };
    this.authDeadline.clear();
    this.heartbeat.stop();
    this.rotation.fail(
      new Error(`the connection ended before the broker answered: ${this.lastError ?? 'closed'}`),
    );
  }

  private send(msg: ClientMessage): void {
    if ('socket' in this.link) this.link.socket.send(msg);
  }
}
