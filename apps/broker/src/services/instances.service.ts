import type { InstanceInfo } from '@trellis/proto';
import { and, asc, eq, lt, sql } from 'drizzle-orm';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { brokerInstances } from '../db/schema';
import type { DevicesService } from './devices.service';
import { offlineInstanceDevices } from './instance-devices';

/** `now() + ms`, in the database's clock: every instance compares leases against one clock. */
const nowPlus = (ms: number) => sql`now() + make_interval(secs => ${ms / 1000}::double precision)`;

/**
 * The broker instances' leases in the shared database. Every comparison uses the database's now(),
 * never a local clock, so instances with skewed clocks still agree on who is dead.
 */
export class InstancesService {
  constructor(
    private readonly db: Db,
    private readonly devices: DevicesService,
  ) {}

  /** Writes (or rewrites, after a lost lease) this instance's lease. */
  async register(id: string, url: string, version: string, leaseMs: number): Promise<void> {
    await this.db
      .insert(brokerInstances)
      .values({ id, url, version, expiresAt: nowPlus(leaseMs) })
      .onConflictDoUpdate({ target: brokerInstances.id, set: { url, version, expiresAt: nowPlus(leaseMs) } });
  }

  /** False when the row is gone: another instance took this one over. */
  async renew(id: string, leaseMs: number): Promise<boolean> {
    const rows = await this.db
      .update(brokerInstances)
      .set({ expiresAt: nowPlus(leaseMs) })
      .where(eq(brokerInstances.id, id))
      .returning({ id: brokerInstances.id });
    return rows.length > 0;
  }

  async setUrl(id: string, url: string): Promise<void> {
    await this.db.update(brokerInstances).set({ url }).where(eq(brokerInstances.id, id));
  }

  async remove(id: string): Promise<void> {
    await this.db.delete(brokerInstances).where(eq(brokerInstances.id, id));
  }

  /** Embedded database: the only broker is starting, so every lease left is stale. */
  async removeAll(): Promise<void> {
    await this.db.delete(brokerInstances);
  }

  async list(): Promise<InstanceInfo[]> {
    const rows = await this.db
      .select({ row: brokerInstances, live: sql<boolean>`${brokerInstances.expiresAt} >= now()` })
      .from(brokerInstances)
      .orderBy(asc(brokerInstances.startedAt), asc(brokerInstances.id));
    return rows.map(({ row, live }) => ({
      id: row.id,
      url: row.url,
      version: row.version,
      startedAt: row.startedAt.toISOString(),
      expiresAt: row.expiresAt.toISOString(),
      live: Boolean(live),
    }));
  }

  /**
   * Every lease, whether it has expired, and whether it expired more than `graceMs` ago (then it
   * is taken over: its devices had that long to reconnect elsewhere before going offline).
   */
  async leases(graceMs = 0): Promise<Array<{ id: string; expired: boolean; due: boolean }>> {
    const rows = await this.db
      .select({
        id: brokerInstances.id,
        expired: sql<boolean>`${brokerInstances.expiresAt} < now()`,
        due: sql<boolean>`${brokerInstances.expiresAt} < now() - make_interval(secs => ${graceMs / 1000})`,
      })
      .from(brokerInstances);
    return rows.map((r) => ({ id: r.id, expired: Boolean(r.expired), due: Boolean(r.due) }));
  }

  /**
   * Takes over a dead instance: deletes its expired lease and takes its devices offline in one
   * transaction, then publishes the changes. The conditional DELETE makes it happen once: a
   * concurrent survivor finds no row (null), and a lease renewed meanwhile no longer matches.
   * Returns how many devices went offline, or null when this call did not take it over.
   */
  async takeOver(deadId: string, graceMs = 0): Promise<number | null> {
    const cutoff = sql`now() - make_interval(secs => ${graceMs / 1000})`;
    // Its device updates may meet a policy apply's gateway locks in the other order: retried.
    const changes = await withConflictRetry(() =>
      this.db.transaction(async (tx) => {
        const [gone] = await tx
          .delete(brokerInstances)
          .where(and(eq(brokerInstances.id, deadId), lt(brokerInstances.expiresAt, cutoff)))
          .returning({ id: brokerInstances.id });
        return gone ? offlineInstanceDevices(tx, deadId) : null;
      }),
    );
    if (changes === null) return null;
    await this.devices.publishUpserts(changes);
    return changes.length;
  }
}
