import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminRequest } from '@trellis/broker';
import type { AdminRequest } from '@trellis/proto';
import { next } from '../child-ipc';
import { withDatabase } from '../database';
import type { BrokerReply } from './messages';

export type BrokerReady = Extract<BrokerReply, { kind: 'ready' }>;
export type BrokerStats = Extract<BrokerReply, { kind: 'stats' }>;

export interface PolicyBench {
  ready: BrokerReady;
  /** One request on the broker's admin socket, as `trellis-broker` sends it; throws on an error answer. */
  admin<T>(req: AdminRequest, timeoutMs?: number): Promise<T>;
  stats(): Promise<BrokerStats>;
  /** The process of the N WebSocket clients, stopped with the broker at the end. */
  forkClients(): ChildProcess;
}

/**
 * Runs `fn` against a broker on a fresh database (PostgreSQL, or the embedded one in its data
 * directory); stops every process and drops the database afterwards, whatever happened.
 */
export async function withPolicyBench<T>(
  n: number,
  db: 'postgres' | 'embedded',
  fn: (bench: PolicyBench) => Promise<T>,
): Promise<T> {
  const run = async (databaseUrl?: string) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'trellis-policy-bench-'));
    const broker = fork(
      join(__dirname, 'broker-process.js'),
      [dataDir, ...(databaseUrl ? [databaseUrl] : [])],
      {
        // BENCH_BROKER_PROFILE=DIR: a CPU profile of the broker, written when it stops.
        execArgv: [
          '--max-old-space-size=8192',
          ...(process.env.BENCH_BROKER_PROFILE
            ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_BROKER_PROFILE}`]
            : []),
        ],
      },
    );
    let clients: ChildProcess | undefined;
    try {
      const ready = await next<BrokerReply, 'ready'>(broker, 'ready');
      const admin = async <R>(req: AdminRequest, timeoutMs = 900_000): Promise<R> => {
        const res = await adminRequest(ready.adminSocket, req, timeoutMs);
        if (!res.ok) throw new Error(`admin ${req.op}: ${res.status} ${res.error}`);
        return res.result as R;
      };
      const stats = async () => {
        broker.send({ cmd: 'stats' });
        return next<BrokerReply, 'stats'>(broker, 'stats');
      };
      const forkClients = () => {
        clients = fork(join(__dirname, 'client-process.js'), [], { execArgv: ['--max-old-space-size=8192'] });
        return clients;
      };
      return await fn({ ready, admin, stats, forkClients });
    } finally {
      // A child that already exited has no channel: sending would throw over the error that ended the run.
      const brokerExited = new Promise((r) => (broker.exitCode === null ? broker.once('exit', r) : r(null)));
      for (const child of [clients, broker]) if (child?.connected) child.send({ cmd: 'stop' });
      await Promise.race([brokerExited, new Promise((r) => setTimeout(r, 5000))]);
      clients?.kill('SIGKILL');
      broker.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  };
  return db === 'embedded' ? run() : withDatabase(`trellis_policy_${process.pid}_${n}`, run);
}
