import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { Pool } from 'pg';
import { lockDataDir } from './data-dir-lock';
import { PgliteWorkerClient } from './pglite-worker';
import * as schema from './schema';

export type Schema = typeof schema;
/** The one database handle every service uses, whichever driver is underneath. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /** Postgres connection string when kind is postgres (the event bus opens its LISTEN client from it). */
  url?: string;
  close(): Promise<void>;
}

/** Same relative path from src/db (tests) and dist/db (built). */
const MIGRATIONS_FOLDER = join(__dirname, '..', '..', 'drizzle');
/** Serialises migrations when several brokers start against one Postgres at once. */
const MIGRATION_LOCK_ID = 7_402_113;

export async function openDatabase(opts: { dataDir: string; databaseUrl?: string }): Promise<Database> {
  if (opts.databaseUrl) return openPostgres(opts.databaseUrl);
  return openPglite(join(opts.dataDir, 'db'));
}

/**
 * The embedded database, locked for this process. A new one is created and migrated in a
 * temporary directory that is renamed into place only when complete: a first start killed while
 * PGlite initialised left a directory that failed every later start (`Aborted()`).
 */
async function openPglite(dir: string): Promise<Database> {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  const unlock = lockDataDir(`${dir}.lock`);
  try {
    if (!existsSync(dir)) {
      const staging = `${dir}.init`;
      rmSync(staging, { recursive: true, force: true }); // what a killed first start left
      mkdirSync(staging, { mode: 0o700 });
      const fresh = await openPgliteAt(staging);
      await fresh.close();
      renameSync(staging, dir);
    }
    const database = await openPgliteAt(dir);
    return {
      ...database,
      close: async () => {
        try {
          await database.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

async function openPgliteAt(dir: string): Promise<Database> {
  const client = await PgliteWorkerClient.open(dir);
  try {
    // drizzle's PGlite driver only calls query() and transaction(), which the worker client provides.
    const db = drizzlePglite(client as unknown as PGlite, { schema });
    await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
    return { db: db as unknown as Db, kind: 'pglite', close: () => client.close() };
  } catch (err) {
    await client.terminate();
    throw err;
  }
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new Pool({ connectionString: url, max: 10 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const db = drizzleNodePg(pool, { schema });
  const lockClient = await pool.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await migrateNodePg(db, { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await lockClient.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => {});
    lockClient.release();
  }
  return {
    db: db as unknown as Db,
    kind: 'postgres',
    url,
    close: () => pool.end(),
  };
}

/** Postgres unique_violation, as both drivers report it (possibly wrapped by drizzle). */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

export async function ping(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}
