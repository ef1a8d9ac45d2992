import type { RelayAllocationRecord, RelayHandle } from '../relay/relay-directory';
import { type PairDevice, pairKey } from './pair-types';

export type RelayReason = 'no-direct-path' | 'punch-failed';

export interface ActiveAllocation {
  record: RelayAllocationRecord;
  relay: RelayHandle;
}

/** A pair's relay, one phase at a time. */
export type RelayPart =
  | { phase: 'none' }
  /** The driver is asking relays; a result of another generation is freed on arrival. */
  | {
      phase: 'allocating';
      reason: RelayReason;
      generation: number;
      /** The allocation on a relay that went away, being replaced. */
      moving: RelayAllocationRecord | null;
    }
  /** No relay could allocate: tried again at `retryAt`, or when a relay comes up (null). */
  | { phase: 'waiting'; reason: RelayReason; retryAt: number | null }
  | {
      phase: 'active';
      reason: RelayReason;
      allocation: ActiveAllocation;
      /** Sides last told to reach the allocation over the relay's TCP fallback. */
      tcpSides: Set<string>;
    };

/** A pair's punching state. */
export interface PunchPart {
  /** When the next punch is due (null: none scheduled). */
  dueAt: number | null;
  /** The candidate lists last punched with: the same lists are not punched again unless one failed. */
  lastSig: string | null;
  failures: number;
  /** When the last punch went out (null: none since the pair was made or reset). */
  sentAt: number | null;
  /** Recent attempt ids of this pair (oldest first); reports of other attempts are not its own. */
  attempts: string[];
  /** Failed attempts already counted (both sides report one punch). */
  counted: string[];
}

/** Two devices of an account (`a` < `b`) that the core is making a path for. */
export interface PairRecord {
  readonly key: string;
  readonly a: string;
  readonly b: string;
  punch: PunchPart;
  relay: RelayPart;
  /** Sides whose agent reported a direct path and nothing else since. */
  direct: Set<string>;
  /** Both sides direct while relayed: the relay is released at this time. */
  releaseAt: number | null;
}

/** A device's presence: online here, or away for a grace that keeps its relayed pairs. */
export type Presence =
  | {
      state: 'online';
      since: number;
      /** Endpoints the reflectors saw it at since it came online. */
      seen: readonly string[];
      /** When its UDP wait ends (reflectors run and none seen yet). */
      udpCheckAt: number | null;
    }
  | { state: 'away'; forgetAt: number };

export interface DeviceRecord {
  view: PairDevice;
  presence: Presence;
  pairs: Set<PairRecord>;
}

export function newPunchPart(): PunchPart {
  return { dueAt: null, lastSig: null, failures: 0, sentAt: null, attempts: [], counted: [] };
}

/** The pairs of one account, by key and by device; a device's events touch only its own pairs. */
export class PairTable {
  private readonly byKey = new Map<string, PairRecord>();
  /** Pairs whose relay part is not `none`. */
  readonly relayed = new Set<PairRecord>();
  readonly byAllocation = new Map<string, PairRecord>();
  readonly byAttempt = new Map<string, PairRecord>();

  constructor(private readonly devices: Map<string, DeviceRecord>) {}

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): PairRecord | undefined {
    return this.byKey.get(key);
  }

  values(): IterableIterator<PairRecord> {
    return this.byKey.values();
  }

  /** The pair of two known devices, created when new. */
  getOrAdd(x: string, y: string): PairRecord {
    const key = pairKey(x, y);
    const existing = this.byKey.get(key);
    if (existing) return existing;
    const [a, b] = x < y ? [x, y] : [y, x];
    const pair: PairRecord = {
      key,
      a,
      b,
      punch: newPunchPart(),
      relay: { phase: 'none' },
      direct: new Set(),
      releaseAt: null,
    };
    this.byKey.set(key, pair);
    for (const id of [a, b]) this.devices.get(id)?.pairs.add(pair);
    return pair;
  }

  setRelay(pair: PairRecord, relay: RelayPart): void {
    const before = pair.relay;
    if (before.phase === 'active') this.byAllocation.delete(before.allocation.record.allocationId);
    pair.relay = relay;
    if (relay.phase === 'active') this.byAllocation.set(relay.allocation.record.allocationId, pair);
    if (relay.phase === 'none') this.relayed.delete(pair);
    else this.relayed.add(pair);
  }

  addAttempt(pair: PairRecord, attemptId: string, keep: number): void {
    pair.punch.attempts.push(attemptId);
    this.byAttempt.set(attemptId, pair);
    while (pair.punch.attempts.length > keep) this.byAttempt.delete(pair.punch.attempts.shift()!);
  }

  clearAttempts(pair: PairRecord): void {
    for (const id of pair.punch.attempts) this.byAttempt.delete(id);
    pair.punch.attempts = [];
  }

  delete(pair: PairRecord): void {
    if (this.byKey.get(pair.key) !== pair) return;
    this.setRelay(pair, { phase: 'none' });
    this.clearAttempts(pair);
    this.byKey.delete(pair.key);
    for (const id of [pair.a, pair.b]) this.devices.get(id)?.pairs.delete(pair);
  }

  clear(): void {
    this.byKey.clear();
    this.relayed.clear();
    this.byAllocation.clear();
    this.byAttempt.clear();
  }
}
