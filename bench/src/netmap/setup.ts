import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  API_PATHS,
  CAPABILITY_VERSION,
  type CreateRelayTokenResponse,
  type EnrollResponse,
  type LoginResponse,
} from '@trellis/proto';
import { next } from '../child-ipc';
import { withDatabase } from '../database';
import { BrokerHttpClient } from '../http-client';
import { DatabaseWatch } from './database-watch';
import { freePort, type HaproxyFront, startHaproxy } from './haproxy-front';
import type { BrokerReply, RelayReply } from './messages';

export type BrokerReady = Extract<BrokerReply, { kind: 'ready' }>;
export type BrokerStats = Extract<BrokerReply, { kind: 'stats' }>;
export type RelayStats = Extract<RelayReply, { kind: 'stats' }>;

/** One size's broker (logged in as the account owner) and relay, and the clients once forked. */
export interface NetmapBench {
  ready: BrokerReady;
  http: BrokerHttpClient;
  /** `gc`: collect before reading memory (RSS figures); left out where a CPU window is measured. */
  stats(gc?: boolean): Promise<BrokerStats>;
  relayStats(): Promise<RelayStats>;
  enroll(name: string, publicKey: string): Promise<EnrollResponse>;
  /** Only with BENCH_PROFILE=<dir>: records the broker's CPU profile between `start` and `stop`. */
  profile?: { start(): Promise<void>; stop(name: string): Promise<string> };
  /** The process of the N WebSocket clients, stopped with the others at the end. */
  forkClients(): ChildProcess;
  /** PostgreSQL's side: transactions, rows, WAL and NOTIFY traffic. */
  db: DatabaseWatch;
}

export const cpuUsOf = (s0: BrokerStats, s1: BrokerStats) =>
  s1.cpuUserUs + s1.cpuSystemUs - s0.cpuUserUs - s0.cpuSystemUs;

/**
 * Runs `fn` against a broker on a fresh database with one relay registered (a fake one in its own
 * process); stops every process and drops the database afterwards, whatever happened.
 */
export async function withNetmapBench<T>(
  n: number,
  proxy: 'haproxy' | undefined,
  fn: (bench: NetmapBench) => Promise<T>,
): Promise<T> {
  return withDatabase(`trellis_bench_${process.pid}_${n}`, async (databaseUrl) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
    const proxyPort = proxy ? await freePort() : 0;
    const broker = fork(join(__dirname, 'broker-process.js'), [dataDir, databaseUrl], {
      execArgv: ['--expose-gc', '--max-old-space-size=8192'],
      env: { ...process.env, ...(proxy ? { BENCH_PROXY_URL: `https://127.0.0.1:${proxyPort}` } : {}) },
    });
    let clients: ChildProcess | undefined;
    let relay: ChildProcess | undefined;
    let front: HaproxyFront | undefined;
    let db: DatabaseWatch | undefined;
    try {
      const ready = await next<BrokerReply, 'ready'>(broker, 'ready');
      if (proxy) {
        front = await startHaproxy(
          mkdtempSync(join(tmpdir(), 'trellis-bench-haproxy-')),
          proxyPort,
          ready.port,
        );
        ready.certPem = front.certPem;
      }
      const stats = async (gc = true) => {
        broker.send({ cmd: 'stats', gc });
        const s = await next<BrokerReply, 'stats'>(broker, 'stats');
        return { ...s, proxyRss: front?.rss() ?? 0 };
      };
      const http = new BrokerHttpClient(ready.url, ready.certPem);
      const login = await http.call<LoginResponse>('POST', API_PATHS.login, {
        email: ready.ownerEmail,
        password: ready.ownerPassword,
      });
      http.setToken(login.token);
      // The account's private relay: its token made as the owner would, the relay a separate client.
      const relayToken = await http.call<CreateRelayTokenResponse>('POST', API_PATHS.relayTokens, {
        name: 'bench-relay',
      });
      relay = fork(join(__dirname, 'relay-process.js'), [ready.url, relayToken.token], {
        env: { ...process.env, BENCH_BROKER_CERT: ready.certPem },
      });
      await next<RelayReply, 'ready'>(relay, 'ready');
      const relayStats = async () => {
        relay!.send({ cmd: 'stats' });
        return next<RelayReply, 'stats'>(relay!, 'stats');
      };
      const enroll = async (name: string, publicKey: string) =>
        http.call<EnrollResponse>('POST', API_PATHS.enroll, {
          protocolVersion: CAPABILITY_VERSION,
          setupKey: ready.setupKey,
          publicKey,
          name,
          hostname: name,
          os: 'linux',
          endpoints: ['192.0.2.1:51820'],
        });
      const profile = process.env.BENCH_PROFILE
        ? {
            start: async () => {
              broker.send({ cmd: 'profile-start' });
              await next<BrokerReply, 'profiling'>(broker, 'profiling');
            },
            stop: async (name: string) => {
              broker.send({ cmd: 'profile-stop', name });
              return (await next<BrokerReply, 'profiled'>(broker, 'profiled')).file;
            },
          }
        : undefined;
      const forkClients = () => {
        clients = fork(join(__dirname, 'client-process.js'), [], { execArgv: ['--max-old-space-size=8192'] });
        return clients;
      };
      db = await DatabaseWatch.start(databaseUrl);
      return await fn({ ready, http, stats, relayStats, enroll, forkClients, profile, db });
    } finally {
      // A child that already exited has no channel: sending would throw over the error that ended the run.
      for (const child of [clients, relay, broker]) if (child?.connected) child.send({ cmd: 'stop' });
      await new Promise((r) => setTimeout(r, 500));
      clients?.kill('SIGKILL');
      relay?.kill('SIGKILL');
      front?.stop();
      await db?.stop();
      broker.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
