import { randomUUID } from 'node:crypto';
import {
  type HeldAllocation,
  type NetmapRelay,
  type PortRange,
  type ReflectorInfo,
  RelayAllocation,
  type RelayBinding,
  RelayCloseCode,
  type RelayLoadMessage,
  type RelayServerMessage,
  type RelayTcpInfo,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import type { LiveRelays } from '../services/relays.service';
import {
  type AdoptedAllocation,
  type RelayAllocationRecord,
  type RelayDirectory,
  type RelayHandle,
  toNetmapRelay,
} from './relay-directory';

/** The control connection of a relay, as the registry uses it. */
export interface RelayLink {
  send(msg: RelayServerMessage): void;
  close(code: number, reason: string): void;
  rttMs(): number | null;
}

/** Who a relay is: `accountId` comes from its token, everything else from its last hello. */
export interface RelayIdentity {
  id: string;
  name: string;
  accountId: string | null;
  publicAddress: string;
  /** The UDP ports it allocates from: an `allocated` outside them is refused. */
  ports: PortRange;
  tcp: RelayTcpInfo | undefined;
  /** The relay's own endpoint reflector, if it runs one. */
  reflector?: ReflectorInfo | undefined;
}

export interface RelayRegistryOptions {
  metrics: BrokerMetrics;
  logger: Logger;
  /** A relay disconnected this long is down and its allocations are lost; default 5 s. */
  downGraceMs?: number;
  /** An allocate without an answer fails after this; default 5 s. */
  allocateTimeoutMs?: number;
  /**
   * An allocation adopted from a relay's report that no pair claims within this is released;
   * default 60 s (agents reconnect within their 30 s backoff cap, then the pair is decided).
   */
  adoptGraceMs?: number;
  /** After expectRelays, claims wait at most this long for those relays to connect; default 35 s. */
  rejoinMs?: number;
}

interface Holding {
  record: RelayAllocationRecord;
  idleTimeoutMs: number;
  /** Adopted from the relay's report when it connected, and not claimed by a pair yet. */
  unclaimed: boolean;
}

/** A claimAdopted waiting for relays expected back after a restart. */
interface ClaimWaiter {
  accountId: string;
  keys: [string, string];
  resolve(adopted: AdoptedAllocation | null): void;
}

interface PendingAllocation {
  relayId: string;
  allocation: RelayAllocation;
  timer: NodeJS.Timeout;
  resolve(record: RelayAllocationRecord): void;
  reject(err: Error): void;
}

class RelayEntry implements RelayHandle {
  link: RelayLink | null = null;
  downTimer: NodeJS.Timeout | null = null;
  readonly held = new Map<string, Holding>();
  load: RelayLoadMessage | null = null;

  constructor(public identity: RelayIdentity) {}

  get id() {
    return this.identity.id;
  }
  get name() {
    return this.identity.name;
  }
  get accountId() {
    return this.identity.accountId;
  }
  get publicAddress() {
    return this.identity.publicAddress;
  }
  get tcp() {
    return this.identity.tcp;
  }
  rttMs(): number | null {
    return this.link?.rttMs() ?? null;
  }
  allocations(): number {
    return this.held.size;
  }
}

type Listeners = {
  'relay-up': (relay: RelayHandle) => void;
  'relay-down': (relayId: string, lost: RelayAllocationRecord[]) => void;
  expired: (allocationId: string) => void;
  bound: (allocationId: string, publicKey: string, binding: RelayBinding) => void;
  /** The relay's reflector saw a device key at an endpoint (enrollment not checked here). */
  observed: (relayId: string, publicKey: string, endpoint: string) => void;
};

const copyRecord = (r: RelayAllocationRecord): RelayAllocationRecord => structuredClone(r);
/** Adopted allocations are looked up by account and the pair's two keys, in either order. */
const pairIndexKey = (accountId: string, keys: readonly string[]) =>
  `${accountId} ${[...keys].sort().join(' ')}`;

/**
 * Relays connected to this broker instance and the allocations they hold, in memory. Allocations
 * outlive a relay's connection for `downGraceMs`, so a relay that restarts gets them back (same
 * ports, known bindings) in its welcome; only a longer absence reports them lost (`relay-down`).
 *
 * The other way round, a broker that restarted holds nothing, but each relay reports what it holds
 * when it connects: well-formed allocations its token may serve are adopted (listed in its welcome,
 * so the relay keeps them), and the pair logic claims them (`claimAdopted`) instead of allocating, so
 * the agents keep their relay and port. Adoptions nobody claims within `adoptGraceMs` are released.
 */
export class RelayRegistry implements RelayDirectory, LiveRelays {
  private readonly relays = new Map<string, RelayEntry>();
  private readonly pending = new Map<string, PendingAllocation>();
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    'relay-up': new Set(),
    'relay-down': new Set(),
    expired: new Set(),
    bound: new Set(),
    observed: new Set(),
  };
  private readonly downGraceMs: number;
  private readonly allocateTimeoutMs: number;
  private readonly adoptGraceMs: number;
  private readonly rejoinMs: number;
  /** Unclaimed adoptions by account and keys; entries are checked on lookup (they may be stale). */
  private readonly adoptable = new Map<string, Array<{ relay: RelayEntry; holding: Holding }>>();
  private readonly adoptTimers = new Set<NodeJS.Timeout>();
  /** Relays online before this broker started that have not connected again (id → account). */
  private readonly expected = new Map<string, string | null>();
  private rejoinTimer: NodeJS.Timeout | null = null;
  private waiters: ClaimWaiter[] = [];
  /** Accounts that have a private relay (registered, token not revoked), online or not. */
  private privateAccounts = new Set<string>();

  constructor(private readonly opts: RelayRegistryOptions) {
    this.downGraceMs = opts.downGraceMs ?? 5_000;
    this.allocateTimeoutMs = opts.allocateTimeoutMs ?? 5_000;
    this.adoptGraceMs = opts.adoptGraceMs ?? 60_000;
    this.rejoinMs = opts.rejoinMs ?? 35_000;
  }

  on<K extends keyof Listeners>(event: K, fn: Listeners[K]): void {
    this.listeners[event].add(fn);
  }

  // --- RelayDirectory ---------------------------------------------------------------------------
  /**
   * An account with private relays is served by those alone, even while none is online: its traffic
   * never crosses the operator's shared relays. Every other account gets the shared ones.
   */
  relaysFor(accountId: string): RelayHandle[] {
    const online = [...this.relays.values()].filter((r) => r.link !== null);
    const own = online.filter((r) => r.accountId === accountId);
    if (own.length > 0 || this.privateAccounts.has(accountId)) return own;
    return online.filter((r) => r.accountId === null);
  }

  /** Which accounts have private relays, as the database says (read at start, then periodically). */
  setPrivateAccounts(accountIds: Iterable<string>): void {
    this.privateAccounts = new Set(accountIds);
    // One connected meanwhile (its row may be newer than the read): still private.
    for (const r of this.relays.values())
      if (r.accountId !== null && r.link !== null) this.privateAccounts.add(r.accountId);
  }

  netmapRelays(accountId: string): NetmapRelay[] {
    return this.relaysFor(accountId).map(toNetmapRelay);
  }

  allocate(
    relayId: string,
    accountId: string,
    keys: [string, string],
    idleTimeoutMs: number,
  ): Promise<RelayAllocationRecord> {
    const relay = this.relays.get(relayId);
    const link = relay?.link;
    if (!relay || !link) return this.refuse('not_connected', `relay ${relayId} is not connected`);
    if (relay.accountId !== null && relay.accountId !== accountId) {
      return this.refuse('wrong_account', `relay ${relay.name} is private to another account`);
    }
    if (keys[0] === keys[1]) return this.refuse('invalid', 'an allocation needs two different keys');
    const parsed = RelayAllocation.safeParse({
      allocationId: randomUUID(),
      accountId,
      port: null,
      sides: keys.map((publicKey) => ({ publicKey, bound: null })),
      idleTimeoutMs,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.refuse('invalid', `invalid allocation: ${issue?.path.join('.')} ${issue?.message}`);
    }
    const allocation = parsed.data;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.failPending(
            allocation.allocationId,
            'timeout',
            `relay ${relay.name} did not answer the allocation within ${this.allocateTimeoutMs} ms`,
          ),
        this.allocateTimeoutMs,
      );
      this.pending.set(allocation.allocationId, { relayId, allocation, timer, resolve, reject });
      link.send({ type: 'allocate', allocation });
    });
  }

  /**
   * Claims an allocation a relay reported holding when it connected (adopted: this broker restarted)
   * for `accountId` and these two keys, on a relay that may serve the account. Once claimed it is the
   * pair's like any allocation. While relays that were online before this broker started have not
   * connected again (see expectRelays), waits for them, at most `rejoinMs`. Null: none to reuse.
   */
  claimAdopted(accountId: string, keys: [string, string]): Promise<AdoptedAllocation | null> {
    const found = this.takeAdopted(accountId, keys);
    if (found || !this.awaitsRelayFor(accountId)) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ accountId, keys, resolve }));
  }

  /**
   * The relays that were online when the broker last ran (from the database, before it serves
   * anyone): claimAdopted waits up to `rejoinMs` for them to connect and report what they hold.
   */
  expectRelays(relays: Iterable<{ id: string; accountId: string | null }>): void {
    for (const r of relays) if (!this.relays.get(r.id)?.link) this.expected.set(r.id, r.accountId);
    if (this.expected.size === 0) return;
    if (this.rejoinTimer) clearTimeout(this.rejoinTimer);
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = null;
      if (this.expected.size > 0)
        this.opts.logger.warn({ missing: [...this.expected.keys()] }, 'relays not back after the restart');
      this.expected.clear();
      this.settleWaiters();
    }, this.rejoinMs);
    this.rejoinTimer.unref?.();
  }

  release(allocationId: string): void {
    if (this.pending.has(allocationId)) {
      this.failPending(allocationId, 'released', 'allocation released before the relay answered');
      return;
    }
    for (const relay of this.relays.values()) {
      if (!relay.held.delete(allocationId)) continue;
      relay.link?.send({ type: 'release', allocationId });
      this.updateGauges();
      return;
    }
  }

  // --- LiveRelays (admin and HTTP status) -------------------------------------------------------
  isOnline(relayId: string): boolean {
    return (this.relays.get(relayId)?.link ?? null) !== null;
  }

  allocationCount(relayId: string): number {
    return this.relays.get(relayId)?.held.size ?? 0;
  }

  // --- from the relay control connections -------------------------------------------------------
  /**
   * A relay authenticated on `link`: a previous connection of it is closed (replaced), the welcome
   * is sent with every allocation it should hold, then `relay-up` fires.
   */
  attach(
    identity: RelayIdentity,
    link: RelayLink,
    sendWelcome: (held: RelayAllocation[]) => void,
    /** What the relay reported holding (hello + relay-held): allocations unknown here are adopted. */
    reported: readonly HeldAllocation[] = [],
  ): void {
    let relay = this.relays.get(identity.id);
    if (!relay) {
      relay = new RelayEntry(identity);
      this.relays.set(identity.id, relay);
    }
    relay.identity = identity;
    if (identity.accountId !== null) this.privateAccounts.add(identity.accountId);
    if (relay.downTimer) clearTimeout(relay.downTimer);
    relay.downTimer = null;
    const previous = relay.link;
    relay.link = link;
    if (previous && previous !== link) {
      this.failPendingOf(relay.id, 'relay_gone', `relay ${relay.name} connection was replaced`);
      previous.close(RelayCloseCode.replaced, 'replaced by a newer connection with the same token');
    }
    this.adopt(relay, reported);
    this.updateGauges();
    sendWelcome(
      [...relay.held.values()].map(({ record, idleTimeoutMs }) => ({
        allocationId: record.allocationId,
        accountId: record.accountId,
        port: record.port,
        sides: structuredClone(record.sides),
        idleTimeoutMs,
      })),
    );
    this.expected.delete(relay.id);
    this.settleWaiters();
    this.emit('relay-up', relay);
  }

  /** The link closed. `immediate` (token revoked): down now instead of after the grace period. */
  detach(relayId: string, link: RelayLink, immediate = false): void {
    const relay = this.relays.get(relayId);
    if (!relay || relay.link !== link) return;
    relay.link = null;
    this.failPendingOf(relayId, 'relay_gone', `relay ${relay.name} disconnected`);
    this.updateGauges();
    if (immediate) {
      this.down(relay);
      return;
    }
    relay.downTimer = setTimeout(() => this.down(relay), this.downGraceMs);
    relay.downTimer.unref?.();
  }

  allocated(relayId: string, allocationId: string, port: number): void {
    const p = this.pending.get(allocationId);
    if (!p || p.relayId !== relayId) {
      const relay = this.relays.get(relayId);
      if (relay?.held.get(allocationId)?.record.port === port) return; // a repeated answer
      // Late (after a timeout or release) or unknown: the relay must not keep it open.
      this.drop(relayId, 'allocated', allocationId);
      relay?.link?.send({ type: 'release', allocationId });
      return;
    }
    const relay = this.relays.get(relayId)!;
    const { first, last } = relay.identity.ports;
    if (port < first || port > last) {
      const message = `relay ${relay.name} allocated port ${port}, outside its range ${first}-${last}`;
      this.failPending(allocationId, 'bad_port', message);
      return;
    }
    this.pending.delete(allocationId);
    clearTimeout(p.timer);
    const record: RelayAllocationRecord = {
      allocationId,
      relayId,
      accountId: p.allocation.accountId,
      port,
      sides: p.allocation.sides,
    };
    relay.held.set(allocationId, { record, idleTimeoutMs: p.allocation.idleTimeoutMs, unclaimed: false });
    this.updateGauges();
    p.resolve(copyRecord(record));
  }

  allocateFailed(relayId: string, allocationId: string, reason: string): void {
    const p = this.pending.get(allocationId);
    if (!p || p.relayId !== relayId) {
      this.drop(relayId, 'allocate-failed', allocationId);
      return;
    }
    const name = this.relays.get(relayId)?.name ?? relayId;
    this.failPending(allocationId, 'refused', `relay ${name} refused the allocation: ${reason}`, false);
  }

  bound(relayId: string, allocationId: string, publicKey: string, binding: RelayBinding): void {
    const held = this.relays.get(relayId)?.held.get(allocationId);
    const side = held?.record.sides.find((s) => s.publicKey === publicKey);
    if (!side) {
      this.drop(relayId, 'bound', allocationId);
      return;
    }
    side.bound = binding;
    this.emit('bound', allocationId, publicKey, binding);
  }

  expired(relayId: string, allocationId: string): void {
    const relay = this.relays.get(relayId);
    if (!relay?.held.delete(allocationId)) {
      this.drop(relayId, 'expired', allocationId);
      return;
    }
    this.updateGauges();
    this.emit('expired', allocationId);
  }

  observed(relayId: string, publicKey: string, endpoint: string): void {
    if (this.relays.get(relayId)?.identity.reflector) this.emit('observed', relayId, publicKey, endpoint);
  }

  /**
   * A shared relay's reflector to classify NATs with when the broker has one address: the first
   * online one (an account's private relay never sees other accounts' devices).
   */
  sharedReflector(): { relayId: string; reflector: ReflectorInfo } | undefined {
    for (const relay of this.relays.values())
      if (relay.link && relay.identity.accountId === null && relay.identity.reflector)
        return { relayId: relay.id, reflector: relay.identity.reflector };
    return undefined;
  }

  load(relayId: string, load: RelayLoadMessage): void {
    const relay = this.relays.get(relayId);
    if (!relay) return;
    relay.load = load;
    this.opts.metrics.relayPacketsPerSecond.set({ relay: relay.name }, load.packetsPerSecond);
  }

  /** Shutdown: no events, pending allocations fail, claims waiting for relays get none. */
  close(): void {
    for (const id of [...this.pending.keys()])
      this.failPending(id, 'relay_gone', 'broker shutting down', false);
    for (const relay of this.relays.values()) if (relay.downTimer) clearTimeout(relay.downTimer);
    for (const timer of this.adoptTimers) clearTimeout(timer);
    this.adoptTimers.clear();
    if (this.rejoinTimer) clearTimeout(this.rejoinTimer);
    this.rejoinTimer = null;
    this.expected.clear();
    this.relays.clear();
    this.adoptable.clear();
    this.settleWaiters();
    this.updateGauges();
  }

  // --- internals --------------------------------------------------------------------------------
  /**
   * Adopts what the relay reported holding that this broker does not know (it restarted): only
   * well-formed allocations its token may serve. Those left out are not in its welcome: it closes them.
   */
  private adopt(relay: RelayEntry, reported: readonly HeldAllocation[]): void {
    const adopted: Holding[] = [];
    let refused = 0;
    const ports = new Set([...relay.held.values()].map((h) => h.record.port));
    for (const a of reported) {
      if (relay.held.has(a.allocationId)) continue; // known here: the broker's record stands
      const why = this.unadoptable(relay, a, ports);
      if (why) {
        refused++;
        this.opts.logger.warn(
          { relayId: relay.id, allocationId: a.allocationId, why },
          'reported allocation refused',
        );
        continue;
      }
      const record: RelayAllocationRecord = {
        allocationId: a.allocationId,
        relayId: relay.id,
        accountId: a.accountId,
        port: a.port,
        sides: structuredClone(a.sides),
      };
      const holding: Holding = { record, idleTimeoutMs: a.idleTimeoutMs, unclaimed: true };
      relay.held.set(a.allocationId, holding);
      ports.add(a.port);
      adopted.push(holding);
      const key = pairIndexKey(a.accountId, [a.sides[0].publicKey, a.sides[1].publicKey]);
      this.adoptable.set(key, [...(this.adoptable.get(key) ?? []), { relay, holding }]);
    }
    this.opts.metrics.relayAdoptions.inc({ outcome: 'adopted' }, adopted.length);
    this.opts.metrics.relayAdoptions.inc({ outcome: 'refused' }, refused);
    if (adopted.length + refused > 0)
      this.opts.logger.info(
        { relayId: relay.id, relay: relay.name, adopted: adopted.length, refused },
        'relay allocations adopted',
      );
    if (adopted.length === 0) return;
    const timer = setTimeout(() => {
      this.adoptTimers.delete(timer);
      this.releaseUnclaimed(relay, adopted);
    }, this.adoptGraceMs);
    timer.unref?.();
    this.adoptTimers.add(timer);
  }

  /** Why a reported allocation cannot be adopted; null when it can. */
  private unadoptable(relay: RelayEntry, a: HeldAllocation, ports: ReadonlySet<number>): string | null {
    if (relay.accountId !== null && relay.accountId !== a.accountId)
      return 'the relay is private to another account';
    const { first, last } = relay.identity.ports;
    if (a.port < first || a.port > last) return `port ${a.port} outside the relay's range ${first}-${last}`;
    if (ports.has(a.port)) return `port ${a.port} held twice`;
    if (a.sides[0].publicKey === a.sides[1].publicKey) return 'both sides have the same key';
    if (this.pending.has(a.allocationId)) return 'allocation id in use';
    for (const other of this.relays.values())
      if (other !== relay && other.held.has(a.allocationId)) return 'allocation id held by another relay';
    return null;
  }

  /** The grace is over: adoptions no pair claimed are released (a reconnect meanwhile kept them). */
  private releaseUnclaimed(relay: RelayEntry, adopted: readonly Holding[]): void {
    let released = 0;
    for (const holding of adopted) {
      const id = holding.record.allocationId;
      if (!holding.unclaimed || relay.held.get(id) !== holding) continue;
      relay.held.delete(id);
      relay.link?.send({ type: 'release', allocationId: id });
      released++;
    }
    // None of the batch can be claimed any more: drop its index entries.
    const batch = new Set(adopted);
    for (const [key, entries] of this.adoptable) {
      const rest = entries.filter((e) => !batch.has(e.holding));
      if (rest.length === 0) this.adoptable.delete(key);
      else if (rest.length < entries.length) this.adoptable.set(key, rest);
    }
    if (released === 0) return;
    this.opts.metrics.relayAdoptions.inc({ outcome: 'released' }, released);
    this.opts.logger.info(
      { relayId: relay.id, relay: relay.name, released },
      'unclaimed adopted allocations released',
    );
    this.updateGauges();
  }

  /** An unclaimed adoption for the pair on a connected relay that may serve the account, now claimed. */
  private takeAdopted(accountId: string, keys: [string, string]): AdoptedAllocation | null {
    const key = pairIndexKey(accountId, keys);
    const candidates = this.adoptable.get(key);
    if (!candidates) return null;
    const serving = new Set(this.relaysFor(accountId));
    // Stale entries (claimed, released, expired, relay gone) are dropped as they are met.
    const live = candidates.filter(
      ({ relay, holding }) =>
        holding.unclaimed &&
        this.relays.get(relay.id) === relay &&
        relay.held.get(holding.record.allocationId) === holding,
    );
    const usable = live.find(({ relay }) => serving.has(relay));
    if (usable) {
      usable.holding.unclaimed = false;
      live.splice(live.indexOf(usable), 1);
      this.opts.metrics.relayAdoptions.inc({ outcome: 'claimed' });
    }
    if (live.length > 0) this.adoptable.set(key, live);
    else this.adoptable.delete(key);
    return usable ? { record: copyRecord(usable.holding.record), relay: usable.relay } : null;
  }

  /** Whether a relay that may serve the account is expected to connect again (see expectRelays). */
  private awaitsRelayFor(accountId: string): boolean {
    for (const account of this.expected.values()) if (account === null || account === accountId) return true;
    return false;
  }

  /** Answers the claims that can be now: an adoption turned up, or no relay for them is expected. */
  private settleWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      const found = this.takeAdopted(w.accountId, w.keys);
      if (found || !this.awaitsRelayFor(w.accountId)) w.resolve(found);
      else this.waiters.push(w);
    }
  }

  private down(relay: RelayEntry): void {
    if (this.relays.get(relay.id) !== relay || relay.link !== null) return;
    this.relays.delete(relay.id);
    this.opts.metrics.relayPacketsPerSecond.remove({ relay: relay.name });
    const lost = [...relay.held.values()].map((h) => copyRecord(h.record));
    this.updateGauges();
    this.opts.logger.info({ relayId: relay.id, relay: relay.name, lost: lost.length }, 'relay down');
    this.emit('relay-down', relay.id, lost);
  }

  private refuse(reason: string, message: string): Promise<never> {
    this.opts.metrics.relayAllocationFailures.inc({ reason });
    return Promise.reject(new Error(message));
  }

  /** Rejects a pending allocation; `release` also tells the relay to drop it if it made it late. */
  private failPending(allocationId: string, reason: string, message: string, release = true): void {
    const p = this.pending.get(allocationId);
    if (!p) return;
    this.pending.delete(allocationId);
    clearTimeout(p.timer);
    if (release) this.relays.get(p.relayId)?.link?.send({ type: 'release', allocationId });
    this.opts.metrics.relayAllocationFailures.inc({ reason });
    p.reject(new Error(message));
  }

  private failPendingOf(relayId: string, reason: string, message: string): void {
    for (const [id, p] of [...this.pending])
      if (p.relayId === relayId) this.failPending(id, reason, message, false);
  }

  /** A report about an allocation this relay does not hold (late, or a confused relay): counted. */
  private drop(relayId: string, type: string, allocationId: string): void {
    this.opts.metrics.relayMessagesDropped.inc({ type });
    this.opts.logger.warn({ relayId, type, allocationId }, 'relay report about an unknown allocation');
  }

  private updateGauges(): void {
    let online = 0;
    let allocations = 0;
    for (const r of this.relays.values()) {
      if (r.link) online++;
      allocations += r.held.size;
    }
    this.opts.metrics.relaysOnline.set(online);
    this.opts.metrics.relayAllocations.set(allocations);
  }

  private emit<K extends keyof Listeners>(event: K, ...args: Parameters<Listeners[K]>): void {
    for (const fn of this.listeners[event]) {
      try {
        (fn as (...a: Parameters<Listeners[K]>) => void)(...args);
      } catch (err) {
        this.opts.logger.error(
          { event, err: err instanceof Error ? err.stack : String(err) },
          'relay listener failed',
        );
      }
    }
  }
}
