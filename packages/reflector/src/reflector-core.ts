import { randomInt } from 'node:crypto';
import {
  compareTai64n,
  consumeInitiation,
  createResponse,
  INITIATION_LENGTH,
  initiationMac1Valid,
  KEEPALIVE_LENGTH,
  keyPairFromPrivate,
  MESSAGE_INITIATION,
  MESSAGE_TRANSPORT,
  openTransport,
  parseInitiation,
  parseTransportHeader,
  REJECT_AFTER_TIME_SECONDS,
  ReplayWindow,
  type SessionKeys,
  type StaticKeyPair,
} from '@trellis/noise';
import { copyCounters, type DropReason, emptyCounters, type ReflectorCounters } from './counters';
import { formatSource, normalizeSource, type SourceAddress } from './endpoint-format';
import { TokenBucketLimiter, type TokenBucketOptions } from './token-bucket';

// The reflector's logic without sockets: a datagram and its source in, at most one reply and one
// observation out. Nothing is ever sent in answer to a packet that did not prove knowledge of an
// enrolled device's private key, and the reply (92 bytes) is smaller than the initiation (148).

/** An authenticated sighting of a device's WireGuard socket from the outside. */
export interface Observation {
  /** The device's WireGuard public key, base64. */
  publicKey: string;
  /** `ip:port` (or `[ipv6]:port`) as seen by this reflector. */
  endpoint: string;
  address: string;
  port: number;
  /** Clock time (ms) of the packet that produced it. */
  at: number;
  /** The packet kind that proved it: a handshake initiation, or a keepalive on a completed session. */
  via: 'initiation' | 'keepalive';
}

export interface PacketOutcome {
  /** Bytes to send back to the source (a handshake response), if any. */
  reply?: Uint8Array;
  observation?: Observation;
  /** Set when the packet was dropped. */
  dropped?: DropReason;
}

export interface DeviceRecord {
  endpoint: string;
  address: string;
  port: number;
  /** When this endpoint was first observed (ms). */
  since: number;
  /** Last authenticated packet from the device (ms). */
  lastSeen: number;
}

export type EnrollmentCheck = (publicKey: string) => boolean | Promise<boolean>;

export interface ReflectorCoreOptions {
  /** The reflector's static X25519 private key: 32 bytes, or base64 as `wg genkey` prints it. */
  privateKey: Uint8Array | string;
  /** Whether a device key (base64) is enrolled; may consult the database. */
  isEnrolled: EnrollmentCheck;
  /** Clock in milliseconds since the epoch (injectable for tests). */
  now?: () => number;
  /** Per-source-IP token bucket over all packets. Defaults: 40 burst, 20/s, 100 000 sources. */
  rateLimit?: Partial<TokenBucketOptions>;
  /** Token bucket over initiations from all sources together: bounds X25519 work. Default 400 burst, 200/s. */
  handshakeRateLimit?: { capacity: number; refillPerSecond: number };
  /**
   * When true, an initiation alone does not produce an observation: the first authenticated keepalive
   * on the resulting session does. That costs one round trip but means a replayed initiation (after a
   * reflector restart forgot the last timestamp) can never make us report an attacker's address.
   */
  requireKeyConfirmation?: boolean;
}

interface Session {
  publicKey: string;
  keys: SessionKeys;
  window: ReplayWindow;
  createdAt: number;
  confirmed: boolean;
}

interface DeviceState {
  lastTimestamp: Uint8Array;
  record?: DeviceRecord;
  /** Local indices of this device's sessions, oldest first. */
  sessionIndices: number[];
}

/** WireGuard keeps previous, current and next keypairs; so do we, for keepalives in flight. */
const SESSIONS_PER_DEVICE = 3;
const SESSION_LIFETIME_MS = REJECT_AFTER_TIME_SECONDS * 1000;
const SWEEP_INTERVAL_MS = 10_000;

export class ReflectorCore {
  readonly publicKey: string;
  private readonly staticKey: StaticKeyPair;
  private readonly now: () => number;
  private readonly sourceLimiter: TokenBucketLimiter;
  private readonly handshakeLimiter: TokenBucketLimiter;
  private readonly devices = new Map<string, DeviceState>();
  private readonly sessions = new Map<number, Session>();
  private readonly stats = emptyCounters();
  private lastSweep = 0;

  constructor(private readonly options: ReflectorCoreOptions) {
    const raw =
      typeof options.privateKey === 'string'
        ? new Uint8Array(Buffer.from(options.privateKey, 'base64'))
        : options.privateKey;
    this.staticKey = keyPairFromPrivate(raw);
    this.publicKey = Buffer.from(this.staticKey.publicKey).toString('base64');
    this.now = options.now ?? Date.now;
    this.sourceLimiter = new TokenBucketLimiter(
      { capacity: 40, refillPerSecond: 20, maxSources: 100_000, ...options.rateLimit },
      this.now,
    );
    this.handshakeLimiter = new TokenBucketLimiter(
      { capacity: 400, refillPerSecond: 200, ...options.handshakeRateLimit, maxSources: 1 },
      this.now,
    );
  }

  /** Processes one datagram. Never throws or rejects, whatever the input. */
  async handle(packet: Uint8Array, from: SourceAddress): Promise<PacketOutcome> {
    this.stats.packets++;
    try {
      return await this.dispatch(packet, normalizeSource(from));
    } catch {
      return this.drop('internal-error');
    }
  }

  counters(): ReflectorCounters {
    return copyCounters(this.stats);
  }

  /** Counts a socket error (the UDP shell reports them). */
  noteSocketError(): void {
    this.stats.socketErrors++;
  }

  /** Counts an exception thrown by an `observed` listener (the UDP shell reports them). */
  noteListenerError(): void {
    this.stats.listenerErrors++;
  }

  /** The last endpoint observed for a device key, if any. */
  lookup(publicKey: string): DeviceRecord | undefined {
    const record = this.devices.get(publicKey)?.record;
    return record ? { ...record } : undefined;
  }

  /** Forgets a device (call on revocation): its sessions stop refreshing anything at once. */
  forget(publicKey: string): void {
    const device = this.devices.get(publicKey);
    if (!device) return;
    for (const index of device.sessionIndices) this.sessions.delete(index);
    this.devices.delete(publicKey);
  }

  private async dispatch(packet: Uint8Array, source: SourceAddress): Promise<PacketOutcome> {
    if (packet.length > INITIATION_LENGTH) return this.drop('oversize');
    if (!this.sourceLimiter.take(source.address)) return this.drop('rate-limited');
    if (packet[0] === MESSAGE_INITIATION) return this.onInitiation(packet, source);
    if (packet[0] === MESSAGE_TRANSPORT) return this.onTransport(packet, source);
    return this.drop('malformed');
  }

  private async onInitiation(packet: Uint8Array, source: SourceAddress): Promise<PacketOutcome> {
    if (!parseInitiation(packet)) return this.drop('malformed');
    // Cheap mac1 check first, so junk cannot use up the handshake budget of real devices.
    if (!initiationMac1Valid(this.staticKey.publicKey, packet)) return this.drop('bad-mac1');
    if (!this.handshakeLimiter.take('*')) return this.drop('rate-limited');
    const result = consumeInitiation(this.staticKey, packet);
    if (!result.ok) return this.drop(result.reason);
    const publicKey = Buffer.from(result.initiatorStatic).toString('base64');
    let enrolled: boolean;
    try {
      enrolled = (await this.options.isEnrolled(publicKey)) === true;
    } catch {
      return this.drop('enrollment-check-failed');
    }
    if (!enrolled) return this.drop('unknown-key');

    // From here to the end nothing awaits, so concurrent initiations of one key cannot interleave.
    const now = this.now();
    const device = this.devices.get(publicKey);
    if (device && compareTai64n(result.timestamp, device.lastTimestamp) <= 0)
      return this.drop('stale-timestamp');
    const state = device ?? { lastTimestamp: result.timestamp, sessionIndices: [] };
    state.lastTimestamp = result.timestamp;
    this.devices.set(publicKey, state);

    const response = createResponse(result.state, { senderIndex: this.freeIndex() });
    this.installSession(state, {
      publicKey,
      keys: response.session,
      window: new ReplayWindow(),
      createdAt: now,
      confirmed: false,
    });
    this.stats.handshakes++;
    const observation = this.options.requireKeyConfirmation
      ? undefined
      : this.observe(state, publicKey, source, now, 'initiation', true);
    return { reply: response.packet, observation };
  }

  private async onTransport(packet: Uint8Array, source: SourceAddress): Promise<PacketOutcome> {
    // The reflector routes nothing, so the only transport message a device sends it is a keepalive.
    const header = packet.length === KEEPALIVE_LENGTH ? parseTransportHeader(packet) : null;
    if (!header) return this.drop('malformed');
    const now = this.now();
    this.sweepSessions(now);
    const session = this.sessions.get(header.receiverIndex);
    if (!session || now - session.createdAt > SESSION_LIFETIME_MS) return this.drop('unknown-session');
    const opened = openTransport(session.keys, packet);
    if (!opened) return this.drop('bad-keepalive');
    if (!session.window.accept(opened.counter)) return this.drop('replayed-keepalive');
    this.stats.keepalives++;

    const device = this.devices.get(session.publicKey);
    if (!device) return {};
    const firstConfirmation = !session.confirmed;
    session.confirmed = true;
    const confirming = firstConfirmation && this.options.requireKeyConfirmation === true;
    return { observation: this.observe(device, session.publicKey, source, now, 'keepalive', confirming) };
  }

  /** Updates the device's record; returns an observation when `always` or when the endpoint moved. */
  private observe(
    device: DeviceState,
    publicKey: string,
    source: SourceAddress,
    now: number,
    via: Observation['via'],
    always: boolean,
  ): Observation | undefined {
    const endpoint = formatSource(source);
    const moved = device.record?.endpoint !== endpoint;
    const since = moved || !device.record ? now : device.record.since;
    device.record = { endpoint, address: source.address, port: source.port, since, lastSeen: now };
    if (!moved && !always) return undefined;
    this.stats.observations++;
    return { publicKey, endpoint, address: source.address, port: source.port, at: now, via };
  }

  private installSession(device: DeviceState, session: Session): void {
    this.sessions.set(session.keys.localIndex, session);
    device.sessionIndices.push(session.keys.localIndex);
    while (device.sessionIndices.length > SESSIONS_PER_DEVICE) {
      this.sessions.delete(device.sessionIndices.shift()!);
    }
  }

  private sweepSessions(now: number): void {
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    for (const [index, session] of this.sessions) {
      if (now - session.createdAt <= SESSION_LIFETIME_MS) continue;
      this.sessions.delete(index);
      const device = this.devices.get(session.publicKey);
      if (device) device.sessionIndices = device.sessionIndices.filter((i) => i !== index);
    }
  }

  private freeIndex(): number {
    for (;;) {
      const index = randomInt(0, 2 ** 32);
      if (!this.sessions.has(index)) return index;
    }
  }

  private drop(reason: DropReason): PacketOutcome {
    this.stats.dropped[reason]++;
    return { dropped: reason };
  }
}
