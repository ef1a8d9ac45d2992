/** The failover bench's setup: a fresh database, three broker processes, and undoing all of it. */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { next } from '../child-ipc';
import type { BrokerArgs, BrokerReply } from './messages';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Undo steps, run last-added first; also run on Ctrl-C and on errors. */
export class Cleanup {
  private readonly steps: Array<() => Promise<void> | void> = [];

  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step();
      } catch (err) {
        console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** Creates database `name` (dropped, connections forced off, by the cleanup); returns its URL. */
export async function createDatabase(adminUrl: string, name: string, cleanup: Cleanup): Promise<string> {
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  cleanup.add(() => admin.end());
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  cleanup.add(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

type Ready = Extract<BrokerReply, { kind: 'ready' }>;
export type BrokerStats = Extract<BrokerReply, { kind: 'stats' }>;

export interface BrokerInstance {
  name: string;
  child: ChildProcess;
  ready: Ready;
  logFile: string;
  stats(): Promise<BrokerStats>;
}

/** Stops a child politely, then for sure; a child already gone is left alone. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  try {
    child.send({ cmd: 'stop' });
  } catch {
    // The IPC channel is already closed.
  }
  await Promise.race([exited, sleep(3000)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/** Forks a child whose stop is part of the cleanup. */
export function forkChild(
  cleanup: Cleanup,
  file: string,
  args: string[],
  opts: { logFile?: string } = {},
): ChildProcess {
  const out = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
  const child = fork(join(__dirname, file), args, {
    execArgv: ['--max-old-space-size=4096'],
    ...(out === undefined ? {} : { stdio: ['ignore', out, out, 'ipc'] }),
  });
  if (out !== undefined) closeSync(out);
  cleanup.add(() => stopChild(child));
  return child;
}

async function startInstance(
  cleanup: Cleanup,
  name: string,
  args: BrokerArgs,
  logFile: string,
): Promise<BrokerInstance> {
  const child = forkChild(cleanup, 'broker-process.js', [JSON.stringify(args)], { logFile });
  const ready = await next<BrokerReply, 'ready'>(child, 'ready');
  return {
    name,
    child,
    ready,
    logFile,
    stats: async () => {
      child.send({ cmd: 'stats' });
      return next<BrokerReply, 'stats'>(child, 'stats');
    },
  };
}

/**
 * Three instances on one database. The first creates the account, the broker key (kept in the
 * database, so the others load it) and a certificate the other two are given as --tls-cert/--tls-key.
 */
export async function startCluster(
  cleanup: Cleanup,
  workDir: string,
  databaseUrl: string,
  logLevel: string,
): Promise<{ brokers: BrokerInstance[]; setupKey: string }> {
  const names = ['A', 'B', 'C'];
  const instance = (i: number, tls: Partial<BrokerArgs>) =>
    startInstance(
      cleanup,
      names[i]!,
      { dataDir: join(workDir, `broker-${names[i]}`), databaseUrl, logLevel, ...tls },
      join(workDir, `broker-${names[i]}.log`),
    );
  const first = await instance(0, {});
  const setupKey = first.ready.setupKey;
  if (!setupKey) throw new Error('the first broker found a database that was not empty');
  const tlsKeyFile = join(dirname(first.ready.certFile), 'key.pem');
  if (!existsSync(tlsKeyFile)) throw new Error(`no key next to ${first.ready.certFile}`);
  const tls = { tlsCertFile: first.ready.certFile, tlsKeyFile };
  const rest = await Promise.all([instance(1, tls), instance(2, tls)]);
  const brokers = [first, ...rest];
  if (new Set(brokers.map((b) => b.ready.brokerPublicKey)).size !== 1)
    throw new Error('the instances do not share one broker key');
  return { brokers, setupKey };
}

/** A broker log's lines at warn and above, counted by level and message. */
export function logSummary(logFile: string): Array<{ level: string; msg: string; count: number }> {
  if (!existsSync(logFile)) return [];
  const counts = new Map<string, { level: string; msg: string; count: number }>();
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let level = 'raw';
    let msg = line.slice(0, 160);
    try {
      const j = JSON.parse(line) as { level?: number; msg?: string };
      if ((j.level ?? 0) < 40) continue;
      level = (j.level ?? 0) >= 50 ? 'error' : 'warn';
      msg = j.msg ?? msg;
    } catch {
      // Not pino's: stderr of the process (a stack trace); shown as it is.
    }
    const key = `${level} ${msg}`;
    const c = counts.get(key) ?? { level, msg, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count);
}
