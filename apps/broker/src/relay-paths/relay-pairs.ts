import { pairKey } from '../punch/punch-plan';
import type { RelayAllocationRecord, RelayHandle } from '../relay/relay-directory';

export type RelayReason = 'no-direct-path' | 'punch-failed';

/** What the allocator knows about two devices of an account (`a` < `b`). */
export interface RelayPair {
  a: string;
  b: string;
  /** Why the pair should be relayed; null: it should not. */
  reason: RelayReason | null;
  active: { record: RelayAllocationRecord; relay: RelayHandle } | null;
  /** Bumped whenever an allocation in flight stops being wanted: its result is then released. */
  generation: number;
  allocating: boolean;
  /** An allocation on a relay that went away, being replaced. */
  moving: RelayAllocationRecord | null;
  /** Devices of the pair whose agent reported a direct path and nothing else since. */
  directSides: Set<string>;
  releaseTimer: NodeJS.Timeout | null;
  retryTimer: NodeJS.Timeout | null;
  /** Devices last told to reach the active allocation over the relay's TCP fallback. */
  tcpSides: Set<string>;
}

/** The pairs one allocator tracks: relayed ones, and ones whose agents reported a path. */
export class RelayPairs {
  private readonly byKey = new Map<string, RelayPair>();
  /** The same pairs by each of their devices (device events touch only theirs). */
  private readonly byDevice = new Map<string, Set<RelayPair>>();

  get(x: string, y: string): RelayPair | undefined {
    return this.byKey.get(pairKey(x, y));
  }

  getOrAdd(x: string, y: string): RelayPair {
    const key = pairKey(x, y);
    const existing = this.byKey.get(key);
    if (existing) return existing;
    const [a, b] = x < y ? [x, y] : [y, x];
    const pair: RelayPair = {
      a,
      b,
      reason: null,
      active: null,
      generation: 0,
      allocating: false,
      moving: null,
      directSides: new Set(),
      releaseTimer: null,
      retryTimer: null,
      tcpSides: new Set(),
    };
    this.byKey.set(key, pair);
    for (const id of [a, b]) {
      const set = this.byDevice.get(id) ?? new Set<RelayPair>();
      set.add(pair);
      this.byDevice.set(id, set);
    }
    return pair;
  }

  /** Stops the pair's timers and drops it. */
  delete(pair: RelayPair): void {
    stopTimers(pair);
    if (this.byKey.get(pairKey(pair.a, pair.b)) !== pair) return;
    this.byKey.delete(pairKey(pair.a, pair.b));
    for (const id of [pair.a, pair.b]) {
      const set = this.byDevice.get(id);
      set?.delete(pair);
      if (set?.size === 0) this.byDevice.delete(id);
    }
  }

  /** The pairs a device is part of (a copy: callers may delete while iterating). */
  of(id: string): RelayPair[] {
    return [...(this.byDevice.get(id) ?? [])];
  }

  values(): IterableIterator<RelayPair> {
    return this.byKey.values();
  }

  clear(): void {
    for (const pair of this.byKey.values()) stopTimers(pair);
    this.byKey.clear();
    this.byDevice.clear();
  }
}

export function cancelRelease(pair: RelayPair): void {
  if (pair.releaseTimer) clearTimeout(pair.releaseTimer);
  pair.releaseTimer = null;
}

export function clearRetry(pair: RelayPair): void {
  if (pair.retryTimer) clearTimeout(pair.retryTimer);
  pair.retryTimer = null;
}

function stopTimers(pair: RelayPair): void {
  cancelRelease(pair);
  clearRetry(pair);
}
