import {
  CAPABILITY_VERSION,
  CloseCode,
  type HeldAllocation,
  RelayClientMessage,
  RelayCloseCode,
  type RelayHelloMessage,
  type RelayServerMessage,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { parseFrame, protocolMismatch } from '../control/parse-frame';
import { RttMeter } from '../control/rtt-meter';
import type { BrokerMetrics } from '../metrics';
import type { RelayTokensService } from '../services/relay-tokens.service';
import type { RelaysService } from '../services/relays.service';
import type { RelayIdentity, RelayLink, RelayRegistry } from './relay-registry';

export interface RelayControlDeps {
  tokens: RelayTokensService;
  relays: RelaysService;
  registry: RelayRegistry;
  metrics: BrokerMetrics;
  logger: Logger;
  authTimeoutMs: number;
  heartbeatIntervalMs: number;
}

/** A relay whose token checked out, not registered yet. */
interface Admitted {
  identity: RelayIdentity;
  tokenId: string;
  accountName: string | null;
}

type State =
  | { phase: 'hello' }
  /** Authenticated; the `held` allocations the hello announced are still arriving (relay-held). */
  | { phase: 'held'; admitted: Admitted; expected: number; held: HeldAllocation[] }
  | { phase: 'ready'; relayId: string; tokenId: string; name: string }
  | { phase: 'closed' };

/**
 * One relay's control connection: relay-hello (token) and the allocations it holds (relay-held
 * frames) → relay-welcome, then the relay's reports, handled one at a time in arrival order. Anything
 * unexpected closes it with the matching code.
 */
export class RelayControlConnection implements RelayLink {
  private state: State = { phase: 'hello' };
  private queue: Promise<void> = Promise.resolve();
  private readonly authTimer: NodeJS.Timeout;
  private readonly rtt: RttMeter;
  private revoked = false;
  private lastTouch = 0;
  lastActivity = Date.now();
  /** The relay's capability version (its hello's, once served): what later versions gate frames by. */
  capabilityVersion: number | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly deps: RelayControlDeps,
    private readonly remote: string,
  ) {
    this.authTimer = setTimeout(
      () => this.fail(CloseCode.authTimeout, 'relay_auth_timeout', 'no relay-hello in time'),
      deps.authTimeoutMs,
    );
    this.rtt = new RttMeter(ws);
    ws.on('message', (data, isBinary) => {
      this.lastActivity = Date.now();
      const text = isBinary ? null : data.toString();
      this.queue = this.queue.then(() => this.handle(text)).catch((err) => this.internalError(err));
    });
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => deps.logger.warn({ remote, err: err.message }, 'relay connection error'));
    this.rtt.measure();
  }

  get tokenId(): string | undefined {
    return this.state.phase === 'ready' ? this.state.tokenId : undefined;
  }

  rttMs(): number | null {
    return this.rtt.rttMs();
  }

  send(msg: RelayServerMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** The token was revoked: close, and the relay is down at once (it cannot come back). */
  revoke(): void {
    this.revoked = true;
    this.fail(RelayCloseCode.revoked, 'relay_revoked', 'relay token revoked');
  }

  close(code: number, reason: string): void {
    if (this.state.phase === 'closed' && this.ws.readyState !== this.ws.OPEN) return;
    this.ws.close(code, reason.slice(0, 120)); // close reasons are limited to 123 bytes
    this.onClose();
  }

  /** Resolves once queued messages are handled. */
  async drained(): Promise<void> {
    await this.queue;
  }

  private async handle(text: string | null): Promise<void> {
    if (this.state.phase === 'closed') return;
    const parsed = parseFrame(RelayClientMessage, text);
    if (!parsed.ok) return this.fail(CloseCode.badMessage, `relay_${parsed.kind}`, parsed.error);
    const { msg } = parsed;
    if (this.state.phase === 'hello') {
      if (msg.type !== 'relay-hello')
        return this.fail(CloseCode.badMessage, 'relay_bad_message', `expected relay-hello, got ${msg.type}`);
      return this.onHello(msg);
    }
    if (this.state.phase === 'held') {
      if (msg.type !== 'relay-held')
        return this.fail(CloseCode.badMessage, 'relay_bad_message', `expected relay-held, got ${msg.type}`);
      return this.onHeld(this.state, msg.allocations);
    }
    const { registry } = this.deps;
    const { relayId } = this.state;
    switch (msg.type) {
      case 'relay-hello':
        return this.fail(CloseCode.badMessage, 'relay_bad_message', 'relay-hello sent twice');
      case 'relay-held':
        return this.fail(CloseCode.badMessage, 'relay_bad_message', 'relay-held after the welcome');
      case 'allocated':
        return registry.allocated(relayId, msg.allocationId, msg.port);
      case 'allocate-failed':
        return registry.allocateFailed(relayId, msg.allocationId, msg.reason);
      case 'bound':
        return registry.bound(relayId, msg.allocationId, msg.publicKey, msg.binding);
      case 'expired':
        return registry.expired(relayId, msg.allocationId);
      case 'observed':
        return registry.observed(relayId, msg.publicKey, msg.endpoint);
      case 'load':
        registry.load(relayId, msg);
        return this.touch(relayId);
      case 'ping':
        this.rtt.measure();
        this.send({ type: 'pong', t: msg.t, serverTime: Date.now() });
        return this.touch(relayId);
    }
  }

  private async onHello(hello: RelayHelloMessage): Promise<void> {
    const mismatch = protocolMismatch(hello.protocolVersion);
    if (mismatch) return this.fail(CloseCode.protocolMismatch, 'relay_protocol_mismatch', mismatch);
    this.capabilityVersion = hello.protocolVersion;
    const check = await this.deps.tokens.verify(hello.token);
    if (!check.ok) {
      if (check.reason === 'revoked')
        return this.fail(RelayCloseCode.revoked, 'relay_revoked', 'relay token revoked');
      return this.fail(RelayCloseCode.badToken, 'relay_bad_token', 'unknown relay token');
    }
    const { tokenId, accountId, accountName } = check.token;
    const relayId = await this.deps.relays.upsert(tokenId, hello, {
      accountId,
      by: { kind: 'relay', address: this.remote },
    });
    await this.deps.tokens.markUsed(tokenId);
    this.lastTouch = Date.now();
    if (this.state.phase === 'closed') return; // closed while the database answered
    const identity: RelayIdentity = {
      id: relayId,
      name: hello.name,
      accountId,
      publicAddress: hello.publicAddress,
      ports: hello.ports,
      tcp: hello.tcp,
      reflector: hello.reflector,
    };
    this.deps.logger.info(
      {
        relayId,
        relay: hello.name,
        account: accountName,
        remote: this.remote,
        version: hello.version,
        capabilityVersion: hello.protocolVersion,
      },
      'relay connected',
    );
    const admitted = { identity, tokenId, accountName };
    const expected = hello.held ?? 0;
    // Still under the auth timer until every announced allocation arrived.
    if (expected > 0) this.state = { phase: 'held', admitted, expected, held: [] };
    else this.register(admitted, []);
  }

  private onHeld(state: Extract<State, { phase: 'held' }>, allocations: HeldAllocation[]): void {
    state.held.push(...allocations);
    if (state.held.length > state.expected) {
      const message = `relay-held: more allocations than the ${state.expected} announced`;
      this.fail(CloseCode.badMessage, 'relay_bad_message', message);
    } else if (state.held.length === state.expected) this.register(state.admitted, state.held);
  }

  /** Registers the relay (adopting what it holds) and sends the welcome. */
  private register({ identity, tokenId, accountName }: Admitted, held: readonly HeldAllocation[]): void {
    clearTimeout(this.authTimer);
    this.state = { phase: 'ready', relayId: identity.id, tokenId, name: identity.name };
    this.deps.registry.attach(
      identity,
      this,
      (allocations) =>
        this.send({
          type: 'relay-welcome',
          relayId: identity.id,
          scope: identity.accountId === null ? 'shared' : 'account',
          ...(accountName !== null ? { accountName } : {}),
          allocations,
          heartbeatIntervalMs: this.deps.heartbeatIntervalMs,
          capabilityVersion: CAPABILITY_VERSION,
        }),
      held,
    );
  }

  /** last_seen_at, at most once per heartbeat interval. */
  private async touch(relayId: string): Promise<void> {
    const now = Date.now();
    if (now - this.lastTouch < this.deps.heartbeatIntervalMs) return;
    this.lastTouch = now;
    await this.deps.relays.touch(relayId);
  }

  private fail(code: number, kind: string, message: string): void {
    this.deps.metrics.error(kind);
    const relayId = this.state.phase === 'ready' ? this.state.relayId : undefined;
    this.deps.logger.warn({ remote: this.remote, relayId, code, kind }, message);
    this.close(code, message);
  }

  private onClose(): void {
    clearTimeout(this.authTimer);
    const previous = this.state;
    if (previous.phase === 'closed') return;
    this.state = { phase: 'closed' };
    if (previous.phase !== 'ready') return;
    this.deps.registry.detach(previous.relayId, this, this.revoked);
    this.deps.logger.info({ relayId: previous.relayId, relay: previous.name }, 'relay disconnected');
  }

  private internalError(err: unknown): void {
    this.deps.metrics.error('internal');
    this.deps.logger.error(
      { remote: this.remote, err: err instanceof Error ? err.stack : String(err) },
      'relay control handler failed',
    );
    this.close(1011, 'internal error');
  }
}
