import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The machine's PostgreSQL (issue text: 127.0.0.1:5432, trust auth), reached from the test process. */
const ADMIN_URL = process.env.TRELLIS_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test';
/**
 * Brokers in lab namespaces cannot reach the machine's loopback; its Unix socket is a file and
 * every namespace sees it.
 */
const SOCKET_DIR = process.env.TRELLIS_TEST_PG_SOCKET ?? '/var/run/postgresql';

/** A database of its own for one lab run's broker instances, dropped at the end. */
export class LabDatabase {
  private constructor(readonly name: string) {}

  static async create(): Promise<LabDatabase> {
    const db = new LabDatabase(`trellis_lab_${randomBytes(4).toString('hex')}`);
    await admin((c) => c.query(`CREATE DATABASE ${db.name}`));
    return db;
  }

  /** DATABASE_URL for a broker in any lab namespace. */
  get url(): string {
    return `postgresql://postgres@localhost/${this.name}?host=${encodeURIComponent(SOCKET_DIR)}`;
  }

  /**
   * Runs statements on this database from the test process, in one transaction (e.g. to change
   * what the broker reads behind its back). Returns the rows of the last one.
   */
  async transaction(statements: Array<{ text: string; values?: unknown[] }>): Promise<unknown[]> {
    const url = new URL(ADMIN_URL);
    url.pathname = `/${this.name}`;
    const c = new Client({ connectionString: url.toString() });
    await c.connect();
    try {
      await c.query('BEGIN');
      let rows: unknown[] = [];
      for (const s of statements) rows = (await c.query(s.text, s.values ?? [])).rows;
      await c.query('COMMIT');
      return rows;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      await c.end();
    }
  }

  async drop(): Promise<void> {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`));
  }
}

async function admin(fn: (c: Client) => Promise<unknown>): Promise<void> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}
