import type {
  BrokerEvent,
  DevicePathsEvent,
  PeerPathKind,
  TopologyEdge,
  TopologyEdgeKind,
} from '@trellis/proto';
import type { EventBus } from '../events/event-bus';

/** What one device said about its path to one peer; `since` in this broker's clock (ms). */
interface Report {
  kind: TopologyEdgeKind;
  relay: string | null;
  since: number;
}

interface AccountPaths {
  /** reporter → peer → report. */
  by: Map<string, Map<string, Report>>;
  /** peer → the devices holding a report about it (to forget a device quickly). */
  about: Map<string, Set<string>>;
}

/** Changed pairs of one account, as `a|b` with a < b. */
export type PathsListener = (accountId: string, pairs: ReadonlySet<string>) => void;

const RANK: Record<TopologyEdgeKind, number> = { connecting: 1, relayed: 2, direct: 3 };

/**
 * The paths the agents of every account reported, in memory on every instance: each instance feeds
 * it the same bus events (`device-paths` from the instance holding the device's connection, device
 * offline and removal), so any instance's dashboard sees every device's paths. An edge is the better
 * of its two sides' reports (one side may notice a handshake before the other).
 */
export class TopologyStore {
  private readonly accounts = new Map<string, AccountPaths>();
  private readonly listeners = new Set<PathsListener>();
  private unsubscribe: (() => void) | null = null;

  start(bus: EventBus): void {
    this.unsubscribe ??= bus.subscribe((e) => this.onEvent(e));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.accounts.clear();
  }

  onChange(fn: PathsListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onEvent(e: BrokerEvent): void {
    if (e.kind === 'device-paths') this.apply(e);
    else if (e.kind === 'device-remove') this.forget(e.accountId, e.deviceId);
    else if (e.kind === 'device-upsert' && !e.device.online) this.forget(e.accountId, e.device.id);
  }

  /** Every edge of the account. */
  edges(accountId: string): TopologyEdge[] {
    const acc = this.accounts.get(accountId);
    if (!acc) return [];
    const out: TopologyEdge[] = [];
    const seen = new Set<string>();
    for (const [from, peers] of acc.by)
      for (const peer of peers.keys()) {
        const key = pairKey(from, peer);
        if (seen.has(key)) continue;
        seen.add(key);
        const edge = this.edge(accountId, key);
        if (edge) out.push(edge);
      }
    return out;
  }

  /** The edge of one pair (`a|b`), or null when neither side has a path. */
  edge(accountId: string, key: string): TopologyEdge | null {
    const acc = this.accounts.get(accountId);
    const [a, b] = key.split('|') as [string, string];
    const x = acc?.by.get(a)?.get(b);
    const y = acc?.by.get(b)?.get(a);
    const best = !x ? y : !y ? x : RANK[y.kind] > RANK[x.kind] ? y : x;
    if (!best) return null;
    // Both sides agree: the path has been there since the first of them saw it.
    const since = x && y && x.kind === y.kind ? Math.min(x.since, y.since) : best.since;
    return { a, b, kind: best.kind, relay: best.relay, since: new Date(since).toISOString() };
  }

  private apply(e: DevicePathsEvent): void {
    const acc = this.account(e.accountId);
    const changed = new Set<string>();
    let mine = acc.by.get(e.deviceId);
    // What a full report replaces, for the starts of the paths it reports again.
    const before = e.full && mine ? new Map(mine) : mine;
    if (e.full && mine) {
      for (const peer of mine.keys()) {
        changed.add(pairKey(e.deviceId, peer));
        acc.about.get(peer)?.delete(e.deviceId);
      }
      mine.clear();
    }
    for (const p of e.paths) {
      if (p.peerId === e.deviceId) continue;
      changed.add(pairKey(e.deviceId, p.peerId));
      const kind = edgeKind(p.path);
      if (!kind) {
        mine?.delete(p.peerId);
        acc.about.get(p.peerId)?.delete(e.deviceId);
        continue;
      }
      if (!mine) {
        mine = new Map();
        acc.by.set(e.deviceId, mine);
      }
      const had = before?.get(p.peerId);
      const relay = kind === 'relayed' ? (p.relay ?? null) : null;
      // The same path reported again (after a reconnect) keeps its start.
      const since = had && had.kind === kind && had.relay === relay ? had.since : e.at - p.forMs;
      mine.set(p.peerId, { kind, relay, since });
      const about = acc.about.get(p.peerId) ?? new Set<string>();
      acc.about.set(p.peerId, about);
      about.add(e.deviceId);
    }
    this.tidy(e.accountId, acc, e.deviceId);
    this.emit(e.accountId, changed);
  }

  /** The device is offline or gone: its reports, and its peers' reports about it, end. */
  private forget(accountId: string, id: string): void {
    const acc = this.accounts.get(accountId);
    if (!acc) return;
    const changed = new Set<string>();
    for (const peer of acc.by.get(id)?.keys() ?? []) {
      changed.add(pairKey(id, peer));
      acc.about.get(peer)?.delete(id);
    }
    acc.by.delete(id);
    for (const from of acc.about.get(id) ?? []) {
      changed.add(pairKey(id, from));
      acc.by.get(from)?.delete(id);
    }
    acc.about.delete(id);
    for (const key of changed) for (const d of key.split('|')) this.tidy(accountId, acc, d);
    this.emit(accountId, changed);
  }

  private account(accountId: string): AccountPaths {
    let acc = this.accounts.get(accountId);
    if (!acc) {
      acc = { by: new Map(), about: new Map() };
      this.accounts.set(accountId, acc);
    }
    return acc;
  }

  /** Drops empty maps, so memory follows the paths that exist. */
  private tidy(accountId: string, acc: AccountPaths, id: string): void {
    if (acc.by.get(id)?.size === 0) acc.by.delete(id);
    if (acc.about.get(id)?.size === 0) acc.about.delete(id);
    if (acc.by.size === 0 && acc.about.size === 0) this.accounts.delete(accountId);
  }

  private emit(accountId: string, changed: Set<string>): void {
    if (changed.size === 0) return;
    for (const fn of this.listeners) fn(accountId, changed);
  }
}

export function pairKey(x: string, y: string): string {
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

function edgeKind(path: PeerPathKind): TopologyEdgeKind | null {
  return path === 'none' ? null : path;
}
