import {
  BrokerRotation,
  type BrokerTarget,
  CapabilityFallback,
  CloseCode,
  MAX_HELD_PER_FRAME,
  type RelayAllocation,
  type RelayClientMessage,
  RelayCloseCode,
  type RelayHelloMessage,
  RelayServerMessage,
  type ResolveHost,
} from '@trellis/proto';
import { fixedLookup, resolveHostAddresses } from '@trellis/tls';
import type { Logger } from 'pino';
import { type ClientOptions, WebSocket } from 'ws';
import type { Relay } from '../relay';
import { LoadMeter } from './load-meter';
import { ReconnectBackoff } from './reconnect-backoff';

export type RelayHello = Omit<RelayHelloMessage, 'type' | 'protocolVersion' | 'held'>;

export interface BrokerLinkOptions {
  /** wss:// URLs of the relay control channel, one per broker instance, tried in this order. */
  urls: string[];
  /** Every address of a broker host name (default: the system resolver, bounded). */
  resolveHost?: ResolveHost;
  tls: ClientOptions;
  hello: RelayHello;
  relay: Relay;
  log: Logger;
  /** The broker refused this relay for good (bad or revoked token): the process should exit. */
  onFatal: (err: Error) => void;
  loadIntervalMs?: number;
  backoff?: ReconnectBackoff;
}

const LOAD_INTERVAL_MS = 10_000;
/** Pongs missed in a row before the connection is considered dead. */
const MISSED_PONGS = 3;
const MAX_MESSAGE_BYTES = 16 << 20;
/** TLS and the HTTP upgrade after the (separately bounded) TCP connect. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * The relay's control channel to the broker: hello (and the allocations held) → welcome (the set to hold), then
 * allocate/release and bound/expired/load. The data plane never waits on it: allocations keep
 * forwarding while this reconnects: at once to the next broker instance (BrokerRotation), and with
 * jittered backoff only after every instance failed.
 */
export class BrokerLink {
  private ws: WebSocket | undefined;
  private welcomed = false;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private loadTimer: NodeJS.Timeout | undefined;
  private pongsOwed = 0;
  /** Messages are handled one after the other: a welcome's sync must finish before the next allocate. */
  private inbox: Promise<void> = Promise.resolve();
  private readonly backoff: ReconnectBackoff;
  private readonly rotation: BrokerRotation;
  private readonly load: LoadMeter;
  /** Expired while the broker was unreachable: reported (and not reopened) after the next welcome. */
  private readonly expiredOffline = new Set<string>();
  /** Our capability version, or 1 for a broker from before them, which refuses ours (4426). */
  private readonly capability: CapabilityFallback;

  constructor(private readonly options: BrokerLinkOptions) {
    this.capability = new CapabilityFallback((broker) =>
      options.log.warn({ url: broker }, 'broker refused our capability version; speaking version 1 to it'),
    );
    this.backoff = options.backoff ?? new ReconnectBackoff();
    this.rotation = new BrokerRotation(options.urls);
    this.load = new LoadMeter(options.relay);
    options.relay.on('bound', (allocationId, publicKey, binding) => {
      if (this.welcomed) this.send({ type: 'bound', allocationId, publicKey, binding });
    });
    options.relay.on('expired', (allocationId) => {
      if (this.welcomed) this.send({ type: 'expired', allocationId });
      else this.expiredOffline.add(allocationId);
    });
  }

  get connected(): boolean {
    return this.welcomed;
  }

  /** The instance connected to (or last tried). */
  get broker(): BrokerTarget | null {
    return this.rotation.current;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  private connect(): void {
    const resolve = this.options.resolveHost ?? ((host) => resolveHostAddresses(host));
    this.rotation.dial(resolve, (target) => this.open(target));
  }

  private open(target: BrokerTarget): void {
    const { log } = this.options;
    const broker = target.address === null ? target.url : `${target.url} (${target.address})`;
    const ws = new WebSocket(target.url, {
      ...this.options.tls,
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(target.address !== null ? { lookup: fixedLookup(target.address) } : {}),
    });
    this.ws = ws;
    ws.on('open', () => {
      log.info({ url: broker }, 'broker connected');
      this.hello();
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      this.inbox = this.inbox
        .then(() => this.receive(text))
        .catch((err: unknown) => log.error({ err }, 'control message failed'));
    });
    ws.on('error', (err) => log.warn({ url: broker, err: err.message }, 'broker connection error'));
    ws.on('close', (code, reason) => this.closed(ws, code, reason.toString()));
  }

  /**
   * The hello, then every allocation held now (in frames): a broker that restarted holds none and
   * adopts them, so their pairs keep this relay and port; its welcome then lists what to keep.
   */
  private hello(): void {
    const held = this.options.relay.held();
    this.send({
      type: 'relay-hello',
      protocolVersion: this.capability.helloVersion(this.rotation.current),
      ...this.options.hello,
      held: held.length,
    });
    for (let i = 0; i < held.length; i += MAX_HELD_PER_FRAME)
      this.send({ type: 'relay-held', allocations: held.slice(i, i + MAX_HELD_PER_FRAME) });
  }

  private async receive(text: string): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.options.log.warn('broker sent invalid JSON; ignored');
      return;
    }
    const parsed = RelayServerMessage.safeParse(json);
    if (!parsed.success) {
      this.options.log.warn(
        { issues: parsed.error.issues.slice(0, 3) },
        'broker sent an invalid message; ignored',
      );
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'relay-welcome':
        this.capability.announced(message.capabilityVersion);
        return this.welcome(message.allocations, message.heartbeatIntervalMs, message.relayId);
      case 'allocate':
        return this.allocate(message.allocation);
      case 'release':
        await this.options.relay.close(message.allocationId);
        return;
      case 'pong':
        this.pongsOwed = 0;
        return;
    }
  }

  private async welcome(allocations: RelayAllocation[], heartbeatMs: number, relayId: string): Promise<void> {
    const { relay, log } = this.options;
    const wanted = allocations.filter((a) => !this.expiredOffline.has(a.allocationId));
    const failures = await relay.sync(wanted);
    const failed = new Set(failures.map((f) => f.allocationId));
    this.welcomed = true;
    this.backoff.reset();
    log.info({ relayId, allocations: relay.size, failed: failed.size }, 'broker welcomed this relay');
    for (const { allocationId, error } of failures) {
      this.send({ type: 'allocate-failed', allocationId, reason: reasonOf(error) });
    }
    for (const spec of wanted) {
      const port = relay.get(spec.allocationId)?.port;
      if (port !== undefined && port !== spec.port)
        this.send({ type: 'allocated', allocationId: spec.allocationId, port });
    }
    for (const allocationId of this.expiredOffline) this.send({ type: 'expired', allocationId });
    this.expiredOffline.clear();
    // Bindings made while the broker was away, or that it listed differently: it keeps them for a resume.
    for (const b of relay.bindings()) this.send({ type: 'bound', ...b });
    this.startTimers(heartbeatMs);
  }

  private async allocate(spec: RelayAllocation): Promise<void> {
    try {
      const port = await this.options.relay.open(spec);
      this.send({ type: 'allocated', allocationId: spec.allocationId, port });
    } catch (error) {
      this.options.log.warn({ allocationId: spec.allocationId, err: reasonOf(error) }, 'allocation failed');
      this.send({ type: 'allocate-failed', allocationId: spec.allocationId, reason: reasonOf(error) });
    }
  }

  private startTimers(heartbeatMs: number): void {
    this.stopTimers();
    this.pongsOwed = 0;
    this.pingTimer = setInterval(() => {
      if (this.pongsOwed >= MISSED_PONGS) {
        this.options.log.warn('broker stopped answering pings; reconnecting');
        this.ws?.terminate();
        return;
      }
      this.pongsOwed++;
      this.send({ type: 'ping', t: Date.now() });
    }, heartbeatMs);
    this.load.reset();
    this.loadTimer = setInterval(
      () => this.send({ type: 'load', ...this.load.sample() }),
      this.options.loadIntervalMs ?? LOAD_INTERVAL_MS,
    );
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearInterval(this.loadTimer);
  }

  private closed(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    const wasWelcomed = this.welcomed;
    this.welcomed = false;
    this.stopTimers();
    if (this.stopped) return;
    if (code === RelayCloseCode.badToken || code === RelayCloseCode.revoked) {
      const what = code === RelayCloseCode.badToken ? 'refused the relay token' : 'revoked the relay token';
      this.stopped = true;
      this.options.onFatal(new Error(`broker ${what} (close ${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    const target = this.rotation.current;
    if (code === CloseCode.protocolMismatch && target && this.capability.refused()) {
      this.open(target); // the same broker at once, with version 1
      return;
    }
    const delay = this.rotation.retryNow(wasWelcomed) ? 0 : this.backoff.next();
    this.options.log.warn(
      { code, reason, retryInMs: delay },
      'broker connection closed; data plane continues',
    );
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private send(message: RelayClientMessage): void {
    const ws = this.ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  /** What the relay's reflector saw; dropped while not connected (devices re-handshake anyway). */
  observed(publicKey: string, endpoint: string): void {
    if (this.welcomed) this.send({ type: 'observed', publicKey, endpoint });
  }

  stop(): void {
    this.stopped = true;
    this.rotation.cancel();
    this.welcomed = false;
    clearTimeout(this.reconnectTimer);
    this.stopTimers();
    // Dropped, not closed with a handshake: shutting down must not wait on the broker's answer.
    this.ws?.terminate();
    this.ws = undefined;
  }
}

function reasonOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 256);
}
