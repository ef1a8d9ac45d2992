import type { ServerResponse } from 'node:http';
import {
  type BrokerEvent,
  DASHBOARD_EVENTS,
  type DeviceInfo,
  type DeviceRemovedEvent,
  type PathChangedEvent,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { EventBus } from '../events/event-bus';
import type { DevicesService } from '../services/devices.service';
import type { UserContext } from '../services/users.service';
import type { TopologyStore } from '../topology/topology-store';
import { mayWatchPair } from '../topology/topology-view';

/** Device changes of an account within this long are read from the database together. */
const COALESCE_MS = 100;

interface Watcher {
  user: UserContext;
  res: ServerResponse;
  /** A member's devices (ids) they have been shown; null for admins, who see every device. */
  visible: Set<string> | null;
}

/**
 * The dashboards watching on this instance, and the device changes they are sent as server-sent
 * events: from the bus (every instance's changes), read once per account per batch, each device
 * sent to the watchers who may see it (admins: all; members: their own). Subscribed to the bus
 * only while someone watches. Path changes (TopologyStore) go out with the same batches, each
 * watcher told of the pairs it may see.
 */
export class DashboardEvents {
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly pending = new Map<string, Set<string>>();
  /** Pairs (`a|b`) whose path changed, per account, sent with the next batch. */
  private readonly pendingPaths = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly devices: DevicesService,
    private readonly logger: Logger,
    private readonly topology?: TopologyStore,
  ) {
    topology?.onChange((accountId, pairs) => this.onPaths(accountId, pairs));
  }

  /**
   * Starts sending `user`'s account's device changes to `res` until it closes; returns how to stop.
   * `visible`: for a member, the ids of the devices they see now (removals of others stay unsaid).
   */
  watch(user: UserContext, res: ServerResponse, visible: readonly string[] = []): () => void {
    const watcher: Watcher = { user, res, visible: user.role === 'member' ? new Set(visible) : null };
    const set = this.watchers.get(user.accountId) ?? new Set<Watcher>();
    this.watchers.set(user.accountId, set);
    set.add(watcher);
    this.unsubscribe ??= this.bus.subscribe((e) => this.onEvent(e));
    let watching = true;
    return () => {
      if (!watching) return;
      watching = false;
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(user.accountId) === set) this.watchers.delete(user.accountId);
      if (this.watchers.size === 0) this.stop();
    };
  }

  get watching(): number {
    let n = 0;
    for (const set of this.watchers.values()) n += set.size;
    return n;
  }

  /** Ends every stream (the broker is closing: open streams would hold its server open). */
  close(): void {
    for (const set of this.watchers.values()) for (const w of set) w.res.end();
    this.watchers.clear();
    this.stop();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.pendingPaths.clear();
  }

  private onPaths(accountId: string, pairs: ReadonlySet<string>): void {
    if (!this.watchers.has(accountId)) return;
    const set = this.pendingPaths.get(accountId) ?? new Set<string>();
    this.pendingPaths.set(accountId, set);
    for (const p of pairs) set.add(p);
    this.timer ??= setTimeout(() => void this.flush(), COALESCE_MS);
  }

  /** Each watcher gets the changed paths it may see (an admin: all; a member: those touching theirs). */
  private flushPaths(): void {
    const batches = [...this.pendingPaths];
    this.pendingPaths.clear();
    for (const [accountId, pairs] of batches) {
      const watchers = this.watchers.get(accountId);
      if (!watchers || !this.topology) continue;
      const all: PathChangedEvent = { edges: [], gone: [] };
      for (const key of pairs) {
        const edge = this.topology.edge(accountId, key);
        const [a, b] = key.split('|') as [string, string];
        if (edge) all.edges.push(edge);
        else all.gone.push({ a, b });
      }
      for (const w of watchers) {
        const mine: PathChangedEvent = {
          edges: all.edges.filter((e) => mayWatchPair(w.visible, e)),
          gone: all.gone.filter((e) => mayWatchPair(w.visible, e)),
        };
        if (mine.edges.length + mine.gone.length > 0) send(w.res, DASHBOARD_EVENTS.path, mine);
      }
    }
  }

  private onEvent(e: BrokerEvent): void {
    if (e.kind === 'device-remove') {
      for (const w of this.watchers.get(e.accountId) ?? []) unshow(w, e.deviceId);
    } else if (e.kind === 'device-upsert' && this.watchers.has(e.accountId)) {
      const ids = this.pending.get(e.accountId) ?? new Set<string>();
      this.pending.set(e.accountId, ids);
      ids.add(e.device.id);
      this.timer ??= setTimeout(() => void this.flush(), COALESCE_MS);
    }
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    this.flushPaths();
    const batches = [...this.pending];
    this.pending.clear();
    for (const [accountId, ids] of batches) {
      const watchers = this.watchers.get(accountId);
      if (!watchers) continue;
      let infos: DeviceInfo[];
      try {
        infos = await this.devices.infoOf(accountId, [...ids]);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message }, 'dashboard events: devices not read');
        continue;
      }
      for (const w of watchers)
        for (const d of infos) {
          if (mayWatch(w.user, d)) {
            w.visible?.add(d.id);
            send(w.res, DASHBOARD_EVENTS.device, d);
          } else unshow(w, d.id);
        }
    }
  }
}

/** Admins and owners see every device of the account; a member only their own. */
export function mayWatch(user: UserContext, device: DeviceInfo): boolean {
  return user.role !== 'member' || device.user === user.email;
}

/** Tells a watcher a device it was shown is gone from its view (removed, or no longer theirs). */
function unshow(w: Watcher, id: string): void {
  if (w.visible && !w.visible.delete(id)) return;
  const removed: DeviceRemovedEvent = { id };
  send(w.res, DASHBOARD_EVENTS.removed, removed);
}

/** Writes to a stream still open: a write after it ended or closed would be an unhandled error. */
export function writeOpen(res: ServerResponse, text: string): void {
  if (!res.writableEnded && !res.destroyed) res.write(text);
}

function send(res: ServerResponse, event: string, data: unknown): void {
  writeOpen(res, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}
