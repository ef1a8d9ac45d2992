/**
 * What PostgreSQL does for the broker, read from beside it: transactions, rows written and WAL
 * bytes of the bench's database (pg_stat_database, pg_current_wal_lsn), and the NOTIFY traffic
 * every broker instance hears (a LISTEN of our own on the instances' channel).
 */
import { NOTIFY_CHANNEL } from '@trellis/proto';
import { Client } from 'pg';

export interface DatabaseCounters {
  commits: number;
  rowsWritten: number;
  walBytes: number;
  notifies: number;
  notifyBytes: number;
}

export class DatabaseWatch {
  private notifies = 0;
  private notifyBytes = 0;

  private constructor(private readonly client: Client) {}

  static async start(databaseUrl: string): Promise<DatabaseWatch> {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    const watch = new DatabaseWatch(client);
    client.on('notification', (n) => {
      if (n.channel !== NOTIFY_CHANNEL) return;
      watch.notifies++;
      watch.notifyBytes += Buffer.byteLength(n.payload ?? '');
    });
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    return watch;
  }

  /** The counters now (this connection's own statistics queries are counted too: a few rows). */
  async read(): Promise<DatabaseCounters> {
    // Statistics are sent by each backend at its transaction's end and may lag by up to 500 ms.
    await this.client.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await this.client.query<{
      commits: string;
      rows: string;
      lsn: string;
    }>(
      `SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows,
              pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS lsn
         FROM pg_stat_database WHERE datname = current_database()`,
    );
    const r = rows[0]!;
    return {
      commits: Number(r.commits),
      rowsWritten: Number(r.rows),
      walBytes: Number(r.lsn),
      notifies: this.notifies,
      notifyBytes: this.notifyBytes,
    };
  }

  async stop(): Promise<void> {
    await this.client.end();
  }
}

/** b − a, field by field. */
export function countersBetween(a: DatabaseCounters, b: DatabaseCounters): DatabaseCounters {
  return {
    commits: b.commits - a.commits,
    rowsWritten: b.rowsWritten - a.rowsWritten,
    walBytes: b.walBytes - a.walBytes,
    notifies: b.notifies - a.notifies,
    notifyBytes: b.notifyBytes - a.notifyBytes,
  };
}

export function sumCounters(a: DatabaseCounters, b: DatabaseCounters): DatabaseCounters {
  return {
    commits: a.commits + b.commits,
    rowsWritten: a.rowsWritten + b.rowsWritten,
    walBytes: a.walBytes + b.walBytes,
    notifies: a.notifies + b.notifies,
    notifyBytes: a.notifyBytes + b.notifyBytes,
  };
}
