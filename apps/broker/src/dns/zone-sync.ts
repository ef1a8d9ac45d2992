import { and, eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db/database';
import { accounts, devices } from '../db/schema';
import type { EventBus } from '../events/event-bus';
import { toDeviceState } from '../services/device-state';
import type { ZoneRecords } from './zone-records';

/** How often the accounts' serials are compared with the database (events this instance missed). */
export const ZONE_RELOAD_MS = 5_000;

/**
 * Keeps ZoneRecords current: every account read at start, each device change applied from the
 * bus as it comes, and every ZONE_RELOAD_MS the accounts' serials and switches compared with the
 * database: an account that differs (a missed event, a new account, the mesh-only switch) is
 * read again, one that is gone is dropped.
 */
export class ZoneSync {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly records: ZoneRecords,
    private readonly log: Logger,
    private readonly reloadMs = ZONE_RELOAD_MS,
  ) {}

  async start(): Promise<void> {
    // Subscribed first: an event during the first read is applied after it (or is stale by then).
    this.unsubscribe = this.bus.subscribe((e) => this.records.apply(e));
    await this.reload();
    this.timer = setInterval(() => void this.reloadOnce(), this.reloadMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
  }

  /** One reload at a time; a tick that finds one running skips. */
  private async reloadOnce(): Promise<void> {
    if (this.running) return;
    this.running = this.reload().catch((err: Error) => {
      this.log.warn({ err: err.message }, 'dns zone reload failed');
    });
    await this.running;
    this.running = undefined;
  }

  async reload(): Promise<void> {
    const rows = await this.db
      .select({
        id: accounts.id,
        name: accounts.name,
        serial: accounts.netmapSerial,
        meshOnly: accounts.dnsMeshOnly,
        createdAt: accounts.createdAt,
      })
      .from(accounts);
    const held = this.records.held();
    for (const row of rows) {
      const h = held.get(row.id);
      held.delete(row.id);
      if (h && h.serial >= row.serial && h.meshOnly === row.meshOnly) continue;
      const list = await this.db
        .select()
        .from(devices)
        .where(and(eq(devices.accountId, row.id), eq(devices.approved, true)));
      this.records.setAccount({ ...row, devices: list.map((r) => toDeviceState(r)) });
    }
    for (const id of held.keys()) this.records.dropAccount(id);
    const newest = rows.reduce((t, r) => Math.max(t, r.createdAt.getTime()), 0);
    this.records.apexSerial = Math.max(1, Math.floor(newest / 1000));
  }
}
