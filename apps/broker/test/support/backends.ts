import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

export const POSTGRES_ADMIN_URL = process.env.TRELLIS_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface Backend {
  name: 'pglite' | 'postgres';
  dataDir: string;
  databaseUrl?: string;
  dispose(): Promise<void>;
}

const tempDirs: string[] = [];

/** A temporary directory removed when the test file finishes. */
export function tempDir(prefix = 'trellis-broker-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh, uniquely named Postgres database on the test server; dropped by dispose(). */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `trellis_t_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function createBackend(name: Backend['name']): Promise<Backend> {
  const dataDir = tempDir();
  if (name === 'pglite') {
    return { name, dataDir, dispose: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const pg = await createPostgresDatabase();
  return {
    name,
    dataDir,
    databaseUrl: pg.url,
    dispose: async () => {
      await pg.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const BACKENDS: Backend['name'][] = ['pglite', 'postgres'];
