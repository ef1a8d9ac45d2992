import { Client } from 'pg';
import { nowMs } from '../stats';

/**
 * What the database (so every surviving instance) says about the dead instance's devices after the
 * kill, polled: rows whose connection is still the dead instance's, and rows marked offline.
 */
export class ConnectionWatch {
  /** Ms after `since` when no row named the dead instance any more (null: not while watched). */
  staleClearedMs: number | null = null;
  staleAtStart = -1;
  maxOffline = 0;
  /** Most backends of this database seen at once waiting on a lock, and idle inside a transaction. */
  maxLockWaits = 0;
  maxIdleInTx = 0;
  /** Samples with a lock waiter, and of those, ones where a blocker sat idle in its transaction. */
  samplesWithWaiters = 0;
  samplesBlockerIdle = 0;
  /**
   * The account's netmap serial, sampled: every device online/offline/endpoint change bumps it in a
   * transaction holding the account row's lock, so its rate is the cluster's change throughput.
   */
  readonly serials: Array<{ at: number; serial: number }> = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly databaseUrl: string,
    /** The dead instance's connection id prefix (`<instance>:`). */
    private readonly prefix: string,
  ) {}

  /** Polls every `everyMs` from `since` until stop(). */
  start(since: number, everyMs = 100): void {
    this.running = true;
    this.loop = (async () => {
      const db = new Client({ connectionString: this.databaseUrl });
      await db.connect();
      try {
        while (this.running) {
          const { rows } = await db.query<{ stale: string; offline: string }>(
            `SELECT count(*) FILTER (WHERE connection_id LIKE $1) AS stale,
                    count(*) FILTER (WHERE connection_id IS NULL) AS offline FROM devices`,
            [`${this.prefix}%`],
          );
          const stale = Number(rows[0]?.stale);
          const offline = Number(rows[0]?.offline);
          const account = await db.query<{ serial: string }>(
            'SELECT max(netmap_serial) AS serial FROM accounts',
          );
          this.serials.push({ at: nowMs(), serial: Number(account.rows[0]?.serial) });
          // A blocker idle in its transaction holds its locks while it waits on its broker, not on PostgreSQL.
          const activity = await db.query<{ locks: string; idle: string; blockerIdle: boolean }>(
            `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') AS locks,
                    count(*) FILTER (WHERE state = 'idle in transaction') AS idle,
                    coalesce(bool_or(wait_event_type = 'Lock' AND EXISTS (
                      SELECT 1 FROM pg_stat_activity h
                       WHERE h.pid = ANY (pg_blocking_pids(a.pid)) AND h.state = 'idle in transaction'
                    )), false) AS "blockerIdle"
               FROM pg_stat_activity a WHERE datname = current_database()`,
          );
          const row = activity.rows[0];
          const locks = Number(row?.locks);
          this.maxLockWaits = Math.max(this.maxLockWaits, locks);
          this.maxIdleInTx = Math.max(this.maxIdleInTx, Number(row?.idle));
          if (locks > 0) this.samplesWithWaiters++;
          if (row?.blockerIdle) this.samplesBlockerIdle++;
          if (this.staleAtStart < 0) this.staleAtStart = stale;
          this.maxOffline = Math.max(this.maxOffline, offline);
          if (stale === 0 && this.staleClearedMs === null) this.staleClearedMs = nowMs() - since;
          await new Promise((r) => setTimeout(r, everyMs));
        }
      } finally {
        await db.end();
      }
    })().catch((err: unknown) => {
      // The figure is then missing, which the report shows; the bench goes on.
      console.error(`database watch stopped: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  /** The most the serial advanced within any `windowMs`, per second. */
  maxSerialRate(windowMs = 1000): number {
    let best = 0;
    let from = 0;
    for (const s of this.serials) {
      while (s.at - this.serials[from]!.at > windowMs) from++;
      best = Math.max(best, s.serial - this.serials[from]!.serial);
    }
    return (best * 1000) / windowMs;
  }

  /** Resolves once no row names the dead instance, or after `timeoutMs`. */
  async cleared(timeoutMs: number): Promise<void> {
    const until = nowMs() + timeoutMs;
    while (this.staleClearedMs === null && nowMs() < until) await new Promise((r) => setTimeout(r, 100));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** The instance id prefix of the connections holding these devices (exactly one expected). */
export async function instancePrefixOf(databaseUrl: string, deviceIds: string[]): Promise<string> {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ instance: string | null }>(
      `SELECT DISTINCT split_part(connection_id, ':', 1) AS instance FROM devices WHERE id = ANY($1::uuid[])`,
      [deviceIds],
    );
    const instances = rows.map((r) => r.instance);
    if (instances.length !== 1 || !instances[0])
      throw new Error(`the victim's devices are held by ${JSON.stringify(instances)}, not by one instance`);
    return `${instances[0]}:`;
  } finally {
    await db.end();
  }
}
