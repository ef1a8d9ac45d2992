import type { HeldAllocation } from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import type { AdoptedAllocation, RelayAllocationRecord, RelayHandle } from './relay-directory';
import { copyRecord, type Holding, type RelayEntry } from './relay-entry';

export interface RelayAdoptionsOptions {
  metrics: BrokerMetrics;
  logger: Logger;
  /**
   * An allocation adopted from a relay's report that no pair claims within this is released;
   * default 60 s (agents reconnect within their 30 s backoff cap, then the pair is decided).
   */
  adoptGraceMs?: number;
  /** After expectRelays, claims wait at most this long for those relays to connect; default 35 s. */
  rejoinMs?: number;
}

/** What adoptions need from the registry that owns the relays and their holdings. */
export interface AdoptionHost {
  /** Connected relays that may serve the account (RelayDirectory.relaysFor). */
  relaysFor(accountId: string): RelayHandle[];
  /** Whether the entry is still the registry's (a relay that went down and came back is a new one). */
  isCurrent(relay: RelayEntry): boolean;
  /** Why the id cannot be adopted on `relay` (in flight, held by another relay); null when free. */
  idConflict(relay: RelayEntry, allocationId: string): string | null;
  /** Holdings were released: the registry updates its gauges. */
  heldChanged(): void;
}

/** A claim waiting for relays expected back after a restart. */
interface ClaimWaiter {
  accountId: string;
  keys: [string, string];
  resolve(adopted: AdoptedAllocation | null): void;
}

/** Adopted allocations are looked up by account and the pair's two keys, in either order. */
const pairIndexKey = (accountId: string, keys: readonly string[]) =>
  `${accountId} ${[...keys].sort().join(' ')}`;

/**
 * A broker that restarted holds nothing, but each relay reports what it holds when it connects:
 * well-formed allocations its token may serve are adopted into the relay's holdings (so its welcome
 * keeps them), and the pair logic claims them instead of allocating, so agents keep relay and port.
 * Adoptions nobody claims within `adoptGraceMs` are released. The registry owns the holdings; this
 * keeps the index to claim them by, the release timers and the claims waiting for relays to rejoin.
 */
export class RelayAdoptions {
  private readonly adoptGraceMs: number;
  private readonly rejoinMs: number;
  /** Unclaimed adoptions by account and keys; entries are checked on lookup (they may be stale). */
  private readonly adoptable = new Map<string, Array<{ relay: RelayEntry; holding: Holding }>>();
  private readonly adoptTimers = new Set<NodeJS.Timeout>();
  /** Relays online before this broker started that have not connected again (id → account). */
  private readonly expected = new Map<string, string | null>();
  private rejoinTimer: NodeJS.Timeout | null = null;
  private waiters: ClaimWaiter[] = [];

  constructor(
    private readonly host: AdoptionHost,
    private readonly opts: RelayAdoptionsOptions,
  ) {
    this.adoptGraceMs = opts.adoptGraceMs ?? 60_000;
    this.rejoinMs = opts.rejoinMs ?? 35_000;
  }

  /** See RelayDirectory.claimAdopted. */
  claim(accountId: string, keys: [string, string]): Promise<AdoptedAllocation | null> {
    const found = this.take(accountId, keys);
    if (found || !this.awaitsRelayFor(accountId)) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ accountId, keys, resolve }));
  }

  /** Relays that were online before the restart and are not connected: claims wait for them. */
  expect(relays: Iterable<{ id: string; accountId: string | null }>): void {
    for (const r of relays) this.expected.set(r.id, r.accountId);
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

  /** The relay connected and was welcomed: claims waiting for it are answered. */
  rejoined(relayId: string): void {
    this.expected.delete(relayId);
    this.settleWaiters();
  }

  /**
   * Adopts what the relay reported holding that this broker does not know (it restarted): only
   * well-formed allocations its token may serve. Those left out are not in its welcome: it closes them.
   */
  adopt(relay: RelayEntry, reported: readonly HeldAllocation[]): void {
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

  /** An adoption handed out by other means than claim() (RelayRegistry.claimHeld): kept from now on. */
  claimed(holding: Holding): void {
    if (!holding.unclaimed) return;
    holding.unclaimed = false;
    this.opts.metrics.relayAdoptions.inc({ outcome: 'claimed' });
  }

  /** Shutdown: timers stop, claims waiting for relays get none. Call after the relays are gone. */
  close(): void {
    for (const timer of this.adoptTimers) clearTimeout(timer);
    this.adoptTimers.clear();
    if (this.rejoinTimer) clearTimeout(this.rejoinTimer);
    this.rejoinTimer = null;
    this.expected.clear();
    this.adoptable.clear();
    this.settleWaiters();
  }

  /** Why a reported allocation cannot be adopted; null when it can. */
  private unadoptable(relay: RelayEntry, a: HeldAllocation, ports: ReadonlySet<number>): string | null {
    if (relay.accountId !== null && relay.accountId !== a.accountId)
      return 'the relay is private to another account';
    const { first, last } = relay.identity.ports;
    if (a.port < first || a.port > last) return `port ${a.port} outside the relay's range ${first}-${last}`;
    if (ports.has(a.port)) return `port ${a.port} held twice`;
    if (a.sides[0].publicKey === a.sides[1].publicKey) return 'both sides have the same key';
    return this.host.idConflict(relay, a.allocationId);
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
    this.host.heldChanged();
  }

  /** An unclaimed adoption for the pair on a connected relay that may serve the account, now claimed. */
  private take(accountId: string, keys: [string, string]): AdoptedAllocation | null {
    const key = pairIndexKey(accountId, keys);
    const candidates = this.adoptable.get(key);
    if (!candidates) return null;
    const serving = new Set(this.host.relaysFor(accountId));
    // Stale entries (claimed, released, expired, relay gone) are dropped as they are met.
    const live = candidates.filter(
      ({ relay, holding }) =>
        holding.unclaimed &&
        this.host.isCurrent(relay) &&
        relay.held.get(holding.record.allocationId) === holding,
    );
    // Newest first (a relay reports in the order it allocated): when an owner gave the pair a new
    // allocation while the old one lived on, the agents are on the new one.
    const usable = live.findLast(({ relay }) => serving.has(relay));
    if (usable) {
      usable.holding.unclaimed = false;
      live.splice(live.indexOf(usable), 1);
      this.opts.metrics.relayAdoptions.inc({ outcome: 'claimed' });
    }
    if (live.length > 0) this.adoptable.set(key, live);
    else this.adoptable.delete(key);
    return usable ? { record: copyRecord(usable.holding.record), relay: usable.relay } : null;
  }

  /** Whether a relay that may serve the account is expected to connect again (see expect). */
  private awaitsRelayFor(accountId: string): boolean {
    for (const account of this.expected.values()) if (account === null || account === accountId) return true;
    return false;
  }

  /** Answers the claims that can be now: an adoption turned up, or no relay for them is expected. */
  private settleWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      const found = this.take(w.accountId, w.keys);
      if (found || !this.awaitsRelayFor(w.accountId)) w.resolve(found);
      else this.waiters.push(w);
    }
  }
}
