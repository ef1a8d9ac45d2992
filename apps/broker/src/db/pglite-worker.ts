import { Worker } from 'node:worker_threads';

/**
 * PGlite runs in a worker thread: its queries execute synchronously inside WebAssembly and would
 * otherwise stall the broker's event loop, and its loader needs Node's own module system (it cannot
 * run inside a sandboxed module registry such as jest's). This client gives drizzle's PGlite driver
 * the two methods it uses, `query` and `transaction`, with PGlite's semantics: one statement or one
 * transaction at a time.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require(workerData.pglitePath);
const identity = (v) => v;
let db;
parentPort.on('message', async (msg) => {
  try {
    if (msg.op === 'open') {
      db = await PGlite.create(workerData.dataDir);
      parentPort.postMessage({ id: msg.id, ok: true });
    } else if (msg.op === 'query') {
      const options = { rowMode: msg.rowMode };
      if (msg.rawTypes) options.parsers = Object.fromEntries(msg.rawTypes.map((oid) => [oid, identity]));
      const r = await db.query(msg.sql, msg.params, options);
      parentPort.postMessage({ id: msg.id, ok: true, result: { rows: r.rows, fields: r.fields, affectedRows: r.affectedRows } });
    } else if (msg.op === 'close') {
      await db.close();
      parentPort.postMessage({ id: msg.id, ok: true });
    }
  } catch (err) {
    parentPort.postMessage({ id: msg.id, ok: false, error: { message: err.message, code: err.code, detail: err.detail } });
  }
});
`;

interface QueryOptions {
  rowMode?: 'array' | 'object';
  parsers?: Record<number, unknown>;
}

export interface QueryResult {
  rows: unknown[];
  fields: Array<{ name: string; dataTypeID: number }>;
  affectedRows?: number;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** Postgres error as thrown by the worker, keeping the SQLSTATE `code` (e.g. 23505). */
export class PgliteError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export interface PgliteQueryable {
  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult>;
}

export class PgliteWorkerClient implements PgliteQueryable {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Serialises statements and transactions, as PGlite's single connection requires. */
  private lock: Promise<void> = Promise.resolve();

  private constructor(dataDir: string) {
    const pglitePath = require.resolve('@electric-sql/pglite');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { dataDir, pglitePath } });
    this.worker.on('message', (msg: { id: number; ok: boolean; result?: unknown; error?: PgliteError }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new PgliteError(msg.error!.message, msg.error!.code, msg.error!.detail));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', () => this.failAll(new Error('database worker exited')));
  }

  /**
   * Opens PGlite on `dataDir` in a new worker. If it fails (a damaged directory makes PGlite abort),
   * the worker is ended too: left running, it kept the process alive after the error.
   */
  static async open(dataDir: string): Promise<PgliteWorkerClient> {
    const client = new PgliteWorkerClient(dataDir);
    try {
      await client.call({ op: 'open' });
    } catch (err) {
      await client.terminate();
      throw new Error(
        `the embedded database in ${dataDir} does not open (${(err as Error).message}); ` +
          'restore it from a backup or move it away to start with an empty one',
      );
    }
    return client;
  }

  /** Ends the worker without closing the database (it failed, or it never opened). */
  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private failAll(err: unknown): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private call(msg: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  private raw(sql: string, params: unknown[] = [], options: QueryOptions = {}): Promise<QueryResult> {
    const rawTypes = options.parsers ? Object.keys(options.parsers).map(Number) : undefined;
    return this.call({
      op: 'query',
      sql,
      params,
      rowMode: options.rowMode,
      rawTypes,
    }) as Promise<QueryResult>;
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise((r) => {
      release = r;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  query(sql: string, params?: unknown[], options?: QueryOptions): Promise<QueryResult> {
    return this.exclusive(() => this.raw(sql, params, options));
  }

  transaction<T>(fn: (tx: PgliteQueryable) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      await this.raw('BEGIN');
      const tx: PgliteQueryable = { query: (sql, params, options) => this.raw(sql, params, options) };
      try {
        const result = await fn(tx);
        await this.raw('COMMIT');
        return result;
      } catch (err) {
        await this.raw('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.exclusive(() => this.call({ op: 'close' }));
    await this.worker.terminate();
  }
}
