import {
  type HeldAllocation,
  type NetmapRelay,
  type ReflectorInfo,
  type RelayAllocation,
  type RelayBinding,
  RelayCloseCode,
  type RelayLoadMessage,
} from '@trellis/proto';
import type { LiveRelays } from '../services/relays.service';
import { RelayAdoptions, type RelayAdoptionsOptions } from './relay-adoptions';
import {
  type AdoptedAllocation,
  type LocalRelayDirectory,
  type RelayAllocationRecord,
  type RelayHandle,
  type RelayListeners,
  toNetmapRelay,
} from './relay-directory';
import { copyRecord, newestHolding, RelayEntry, type RelayIdentity, type RelayLink } from './relay-entry';
import { PendingAllocations } from './relay-pending';

export type { RelayIdentity, RelayLink } from './relay-entry';

export interface RelayRegistryOptions extends RelayAdoptionsOptions {
  /** A relay disconnected this long is down and its allocations are lost; default 5 s. */
  downGraceMs?: number;
  /** An allocate without an answer fails after this; default 5 s. */
  allocateTimeoutMs?: number;
}

type Listeners = RelayListeners;

/**
 * Relays connected to this broker instance and the allocations they hold, in memory. Allocations
 * outlive a relay's connection for `downGraceMs`, so a relay that restarts gets them back (same
 * ports, known bindings) in its welcome; only a longer absence reports them lost (`relay-down`).
 *
 * The other way round, a broker that restarted adopts what each relay reports holding when it
 * connects, for the pairs to claim (`claimAdopted`) so agents keep relay and port: RelayAdoptions.
 */
export class RelayRegistry implements LocalRelayDirectory, LiveRelays {
  private readonly relays = new Map<string, RelayEntry>();
  private readonly pending: PendingAllocations;
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    'relay-up': new Set(),
    'relay-down': new Set(),
    expired: new Set(),
    bound: new Set(),
    observed: new Set(),
  };
  private readonly downGraceMs: number;
  private readonly adoptions: RelayAdoptions;
  /** Accounts that have a private relay (registered, token not revoked), online or not. */
  private privateAccounts = new Set<string>();

  constructor(private readonly opts: RelayRegistryOptions) {
    this.downGraceMs = opts.downGraceMs ?? 5_000;
    this.pending = new PendingAllocations({
      metrics: opts.metrics,
      timeoutMs: opts.allocateTimeoutMs ?? 5_000,
      sendRelease: (relayId, allocationId) =>
        this.relays.get(relayId)?.link?.send({ type: 'release', allocationId }),
    });
    this.adoptions = new RelayAdoptions(
      {
        relaysFor: (accountId) => this.relaysFor(accountId),
        isCurrent: (relay) => this.relays.get(relay.id) === relay,
        idConflict: (relay, allocationId) => {
          if (this.pending.has(allocationId)) return 'allocation id in use';
          for (const other of this.relays.values())
            if (other !== relay && other.held.has(allocationId)) return 'allocation id held by another relay';
          return null;
        },
        heldChanged: () => this.updateGauges(),
      },
      opts,
    );
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
    return this.pending.request(relayId, this.relays.get(relayId), accountId, keys, idleTimeoutMs);
  }

  /**
   * Claims an allocation a relay reported holding when it connected (adopted: this broker restarted)
   * for `accountId` and these two keys, on a relay that may serve the account. Once claimed it is the
   * pair's like any allocation. While relays that were online before this broker started have not
   * connected again (see expectRelays), waits for them, at most `rejoinMs`. Null: none to reuse.
   */
  claimAdopted(accountId: string, keys: [string, string]): Promise<AdoptedAllocation | null> {
    return this.adoptions.claim(accountId, keys);
  }

  /**
   * The relays that were online when the broker last ran (from the database, before it serves
   * anyone): claimAdopted waits up to `rejoinMs` for them to connect and report what they hold.
   */
  expectRelays(relays: Iterable<{ id: string; accountId: string | null }>): void {
    this.adoptions.expect([...relays].filter((r) => !this.relays.get(r.id)?.link));
  }

  /**
   * For the account's owner (cluster): an allocation a relay here holds for these keys, on none of
   * `exclude`; null: none. The newest (relays report, and the broker allocates, in order): when a
   * pair got a new allocation while an old one lived on, whether either was claimed here or not,
   * the agents are on the new one. An adoption so taken is claimed; the other's grace releases it.
   * With none here yet, waits like claimAdopted for relays expected back after a restart.
   */
  async claimHeld(
    accountId: string,
    keys: [string, string],
    exclude: readonly string[],
  ): Promise<AdoptedAllocation | null> {
    const newest = () => {
      const serving = new Set(this.relaysFor(accountId).map((r) => r.id));
      const relays = [...this.relays.values()].filter((r) => serving.has(r.id) && !exclude.includes(r.id));
      return newestHolding(relays, accountId, keys);
    };
    let found = newest();
    if (!found) {
      const adopted = await this.claimAdopted(accountId, keys);
      if (adopted && !exclude.includes(adopted.relay.id)) return adopted;
      if (adopted) this.release(adopted.record.allocationId);
      found = newest();
    }
    if (!found) return null;
    if (found.holding.unclaimed) this.adoptions.claimed(found.holding);
    return { record: copyRecord(found.holding.record), relay: found.relay };
  }

  /** The relay is connected to another instance: claims here stop waiting for it to rejoin. */
  seenElsewhere(relayId: string): void {
    this.adoptions.rejoined(relayId);
  }

  /** Whether the account has private relays (then shared ones never serve it). */
  hasPrivateRelays(accountId: string): boolean {
    return this.privateAccounts.has(accountId);
  }

  reflectorOf(relayId: string): ReflectorInfo | undefined {
    return this.relays.get(relayId)?.identity.reflector;
  }

  /** Relays connected here (the cluster announces them to the other instances). */
  connected(): RelayHandle[] {
    return [...this.relays.values()].filter((r) => r.link !== null);
  }

  release(allocationId: string): void {
    if (this.pending.has(allocationId)) {
      this.pending.fail(allocationId, 'released', 'allocation released before the relay answered');
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
      this.pending.failAll(relay.id, 'relay_gone', `relay ${relay.name} connection was replaced`);
      previous.close(RelayCloseCode.replaced, 'replaced by a newer connection with the same token');
    }
    this.adoptions.adopt(relay, reported);
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
    this.adoptions.rejoined(relay.id);
    this.emit('relay-up', relay);
  }

  /** The link closed. `immediate` (token revoked): down now instead of after the grace period. */
  detach(relayId: string, link: RelayLink, immediate = false): void {
    const relay = this.relays.get(relayId);
    if (!relay || relay.link !== link) return;
    relay.link = null;
    this.pending.failAll(relayId, 'relay_gone', `relay ${relay.name} disconnected`);
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
      this.pending.fail(allocationId, 'bad_port', message);
      return;
    }
    const record: RelayAllocationRecord = {
      allocationId,
      relayId,
      accountId: p.allocation.accountId,
      port,
      sides: p.allocation.sides,
    };
    relay.held.set(allocationId, { record, idleTimeoutMs: p.allocation.idleTimeoutMs, unclaimed: false });
    this.updateGauges();
    this.pending.complete(allocationId, copyRecord(record));
  }

  allocateFailed(relayId: string, allocationId: string, reason: string): void {
    const p = this.pending.get(allocationId);
    if (!p || p.relayId !== relayId) {
      this.drop(relayId, 'allocate-failed', allocationId);
      return;
    }
    const name = this.relays.get(relayId)?.name ?? relayId;
    this.pending.fail(allocationId, 'refused', `relay ${name} refused the allocation: ${reason}`, false);
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
    this.pending.failAll(null, 'relay_gone', 'broker shutting down');
    for (const relay of this.relays.values()) if (relay.downTimer) clearTimeout(relay.downTimer);
    this.relays.clear();
    this.adoptions.close();
    this.updateGauges();
  }

  // --- internals --------------------------------------------------------------------------------
  private down(relay: RelayEntry): void {
    if (this.relays.get(relay.id) !== relay || relay.link !== null) return;
    this.relays.delete(relay.id);
    this.opts.metrics.relayPacketsPerSecond.remove({ relay: relay.name });
    const lost = [...relay.held.values()].map((h) => copyRecord(h.record));
    this.updateGauges();
    this.opts.logger.info({ relayId: relay.id, relay: relay.name, lost: lost.length }, 'relay down');
    this.emit('relay-down', relay.id, lost);
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
