/**
 * `pnpm bench netmap [--sizes 1000,5000,10000] [--rounds 5] [--wanted 2]`
 * One broker on PostgreSQL (reflectors on) with one relay registered (a fake one in its own
 * process), N devices in one account, each a real authenticated WebSocket client.
 * Measures: enrollment throughput, time for one join / one removal to reach every connected device
 * (p50/p99 over all devices and rounds), broker RSS per connected device, broker CPU per change;
 * then every device wants paths to `--wanted` random peers (time to its `relay` or `punch`, broker
 * CPU per wanted pair, pairs held, RSS per device); then a reconnection storm (every client drops
 * and reconnects at once: time to all connected, broker CPU per device).
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  API_PATHS,
  type CreateRelayTokenResponse,
  type EnrollResponse,
  type LoginResponse,
  PROTOCOL_VERSION,
} from '@trellis/proto';
import { Client } from 'pg';
import { next, pool } from '../child-ipc';
import { BrokerHttpClient } from '../http-client';
import { fastKeyPair } from '../keys';
import { nowMs, percentile, printTable } from '../stats';
import type { BenchDevice, BrokerReply, ClientReply, RelayReply } from './messages';

const ADMIN_DB = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const ENROLL_CONCURRENCY = 32;

interface SizeResult {
  n: number;
  enrollPerSec: number;
  connectSec: number;
  snapshotMB: number;
  join: number[];
  remove: number[];
  missing: number;
  rssPerDeviceKB: number;
  cpuPerChangeMs: number;
  /** Distinct device pairs some device wanted a path for. */
  wantedPairs: number;
  /** Per want: ms to the device's first `relay` or `punch` for the peer. */
  want: number[];
  /** The same for SINGLE_WANTS fresh pairs wanted one at a time after the burst. */
  wantSingle: number[];
  wantMissing: number;
  wantRelays: number;
  wantPunches: number;
  cpuPerWantedPairMs: number;
  pairsHeld: number;
  rssPerDeviceAfterWantsKB: number;
  relayAllocations: number;
  stormSec: number;
  stormRetries: number;
  stormFailed: number;
  stormCpuSec: number;
  stormCpuPerDeviceMs: number;
  pairsAfterStorm: number;
}

interface Args {
  sizes: number[];
  rounds: number;
  wanted: number;
  resultFile?: string;
}

function args(): Args {
  const a = process.argv.slice(2);
  const get = (flag: string) => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const sizes = (get('--sizes') ?? '1000,5000,10000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--sizes takes whole numbers >= 2');
  const wanted = Number(get('--wanted') ?? 2);
  if (!Number.isInteger(wanted) || wanted < 1) throw new Error('--wanted takes a whole number >= 1');
  return { sizes, rounds: Number(get('--rounds') ?? 5), wanted, resultFile: get('--result-file') };
}

async function withDatabase<T>(name: string, fn: (url: string) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: ADMIN_DB });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(ADMIN_DB);
    url.pathname = `/${name}`;
    return await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

/** Each device wants paths to `k` distinct random peers (fewer when the account is smaller). */
function pickWants(
  devices: BenchDevice[],
  k: number,
): { wants: Array<{ index: number; peerId: string }>; pairs: Set<number> } {
  const n = devices.length;
  const per = Math.min(k, n - 1);
  const wants: Array<{ index: number; peerId: string }> = [];
  const pairs = new Set<number>();
  for (let i = 0; i < n; i++) {
    const peers = new Set<number>();
    while (peers.size < per) {
      const j = Math.floor(Math.random() * n);
      if (j !== i) peers.add(j);
    }
    for (const j of peers) {
      wants.push({ index: i, peerId: devices[j]!.deviceId });
      pairs.add(Math.min(i, j) * n + Math.max(i, j));
    }
  }
  return { wants, pairs };
}

/** `count` wants for pairs no one wanted yet (`taken`, keyed as pickWants keys them). */
function pickFreshWants(
  devices: BenchDevice[],
  taken: Set<number>,
  count: number,
): Array<{ index: number; peerId: string }> {
  const n = devices.length;
  const wants: Array<{ index: number; peerId: string }> = [];
  for (let tries = 0; wants.length < count && tries < count * 100; tries++) {
    const i = Math.floor(Math.random() * n);
    const j = Math.floor(Math.random() * n);
    const key = Math.min(i, j) * n + Math.max(i, j);
    if (i === j || taken.has(key)) continue;
    taken.add(key);
    wants.push({ index: i, peerId: devices[j]!.deviceId });
  }
  return wants;
}

/** Wants sent one after the other on a quiet broker: the latency without the burst's queue. */
const SINGLE_WANTS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuUsOf = (s0: BrokerStats, s1: BrokerStats) =>
  s1.cpuUserUs + s1.cpuSystemUs - s0.cpuUserUs - s0.cpuSystemUs;
type BrokerStats = Extract<BrokerReply, { kind: 'stats' }>;

async function runSize(n: number, { rounds, wanted }: Args): Promise<SizeResult> {
  return withDatabase(`trellis_bench_${process.pid}_${n}`, async (databaseUrl) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
    const broker = fork(join(__dirname, 'broker-process.js'), [dataDir, databaseUrl], {
      execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    });
    let clients: ChildProcess | undefined;
    let relay: ChildProcess | undefined;
    try {
      const ready = await next<BrokerReply, 'ready'>(broker, 'ready');
      const stats = async (gc = true) => {
        broker.send({ cmd: 'stats', gc });
        return next<BrokerReply, 'stats'>(broker, 'stats');
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
          protocolVersion: PROTOCOL_VERSION,
          setupKey: ready.setupKey,
          publicKey,
          name,
          hostname: name,
          os: 'linux',
          endpoints: ['192.0.2.1:51820'],
        });

      console.log(`[${n}] enrolling ${n} devices`);
      const keys = Array.from({ length: n }, fastKeyPair);
      const devices: BenchDevice[] = new Array(n);
      const t0 = nowMs();
      await pool(keys, ENROLL_CONCURRENCY, async (k, i) => {
        const r = await enroll(`dev-${i}`, k.publicKey);
        devices[i] = { deviceId: r.deviceId, ...k };
      });
      const enrollPerSec = n / ((nowMs() - t0) / 1000);

      const before = await stats();
      console.log(`[${n}] connecting ${n} WebSocket clients`);
      clients = fork(join(__dirname, 'client-process.js'), [], { execArgv: ['--max-old-space-size=8192'] });
      clients.send({
        cmd: 'connect',
        url: ready.url,
        certPem: ready.certPem,
        brokerPublicKey: ready.brokerPublicKey,
        devices,
      });
      const connected = await next<ClientReply, 'connected'>(clients, 'connected', (m) => {
        if (m.kind === 'progress') console.log(`[${n}]   ${m.connected} connected`);
      });
      if (connected.failed > 0) throw new Error(`${connected.failed} clients failed to connect`);
      // Let the online-state deltas of the ramp drain before measuring.
      await new Promise((r) => setTimeout(r, 3000));
      const after = await stats();

      const joinTimes: number[] = [];
      const removeTimes: number[] = [];
      let cpuUs = 0;
      let missing = 0;
      let id = 0;
      const measure = async (
        kind: 'join' | 'remove',
        change: () => Promise<unknown>,
        target: { publicKey?: string; deviceId?: string },
      ) => {
        const c = clients!;
        c.send({ cmd: 'expect', id: ++id, kind, timeoutMs: 30_000, ...target });
        await next<ClientReply, 'armed'>(c, 'armed');
        const s0 = await stats();
        const start = nowMs();
        const arrivals = next<ClientReply, 'arrivals'>(c, 'arrivals');
        await change();
        const got = await arrivals;
        const s1 = await stats();
        cpuUs += s1.cpuUserUs + s1.cpuSystemUs - s0.cpuUserUs - s0.cpuSystemUs;
        missing += got.missing;
        return got.times.map((t) => t - start);
      };
      for (let r = 0; r < rounds; r++) {
        const k = fastKeyPair();
        let deviceId = '';
        joinTimes.push(
          ...(await measure(
            'join',
            async () => {
              deviceId = (await enroll(`extra-${r}`, k.publicKey)).deviceId;
            },
            { publicKey: k.publicKey },
          )),
        );
        removeTimes.push(
          ...(await measure('remove', () => http.call('DELETE', `${API_PATHS.devices}/${deviceId}`), {
            deviceId,
          })),
        );
      }
      http.close();

      // Wanted pairs: long after every device came online, so any side no reflector heard from
      // (none here: the clients send no UDP) counts as UDP-blocked and the pair goes to the relay.
      const { wants, pairs } = pickWants(devices, wanted);
      const wantedPairs = pairs.size;
      console.log(`[${n}] ${wants.length} want-path at once (${wantedPairs} pairs)`);
      const relay0 = await relayStats();
      const w0 = await stats(false);
      clients.send({ cmd: 'want', wants, timeoutMs: 60_000 });
      const answered = await next<ClientReply, 'wanted'>(clients, 'wanted');
      const w1 = await stats(false);
      const relay1 = await relayStats();
      const afterWants = await stats();
      // The burst above measures its queue; one want at a time measures the path itself.
      const wantSingle: number[] = [];
      let singleMissing = 0;
      for (const w of pickFreshWants(devices, pairs, SINGLE_WANTS)) {
        clients.send({ cmd: 'want', wants: [w], timeoutMs: 10_000 });
        const one = await next<ClientReply, 'wanted'>(clients, 'wanted');
        wantSingle.push(...one.times);
        singleMissing += one.missing;
      }

      // Reconnection storm, as after a broker restart.
      console.log(`[${n}] reconnection storm: ${n} clients drop and reconnect`);
      const st0 = await stats(false);
      clients.send({
        cmd: 'storm',
        url: ready.url,
        certPem: ready.certPem,
        brokerPublicKey: ready.brokerPublicKey,
        timeoutMs: 600_000,
      });
      const stormed = await next<ClientReply, 'stormed'>(clients, 'stormed', (m) => {
        if (m.kind === 'progress') console.log(`[${n}]   ${m.connected} reconnected`);
      });
      // The same drain as after the first connect: the storm's online deltas are part of its cost.
      await sleep(3000);
      const st1 = await stats(false);
      if (stormed.retries > 0) console.log(`[${n}] storm retries: ${JSON.stringify(stormed.retryReasons)}`);
      if (st1.connected !== n)
        console.error(`[${n}] after the storm the broker counts ${st1.connected} connected`);

      return {
        n,
        enrollPerSec,
        connectSec: connected.elapsedMs / 1000,
        snapshotMB: connected.snapshotBytes / 1e6,
        join: joinTimes,
        remove: removeTimes,
        missing,
        rssPerDeviceKB: (after.rss - before.rss) / after.connected / 1024,
        cpuPerChangeMs: cpuUs / 1000 / (rounds * 2),
        wantedPairs,
        want: answered.times,
        wantSingle,
        wantMissing: answered.missing + singleMissing,
        wantRelays: answered.relays,
        wantPunches: answered.punches,
        cpuPerWantedPairMs: cpuUsOf(w0, w1) / 1000 / wantedPairs,
        pairsHeld: afterWants.pathPairs,
        rssPerDeviceAfterWantsKB: (afterWants.rss - before.rss) / afterWants.connected / 1024,
        relayAllocations: relay1.allocated - relay0.allocated,
        stormSec: stormed.elapsedMs / 1000,
        stormRetries: stormed.retries,
        stormFailed: stormed.failed,
        stormCpuSec: cpuUsOf(st0, st1) / 1e6,
        stormCpuPerDeviceMs: cpuUsOf(st0, st1) / 1000 / n,
        pairsAfterStorm: st1.pathPairs,
      };
    } finally {
      clients?.send({ cmd: 'stop' });
      relay?.send({ cmd: 'stop' });
      broker.send({ cmd: 'stop' });
      await new Promise((r) => setTimeout(r, 500));
      clients?.kill('SIGKILL');
      relay?.kill('SIGKILL');
      broker.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

/** Each size in a fresh process, so one size's sockets, pools and heap never skew the next. */
function runSizeInChild(n: number, a: Args): SizeResult {
  const resultFile = join(mkdtempSync(join(tmpdir(), 'trellis-bench-result-')), 'result.json');
  const child = spawnSync(
    process.execPath,
    [
      __filename,
      ...['--sizes', String(n), '--rounds', String(a.rounds), '--wanted', String(a.wanted)],
      ...['--result-file', resultFile],
    ],
    { stdio: 'inherit' },
  );
  if (child.status !== 0) throw new Error(`benchmark for ${n} devices failed (exit ${child.status})`);
  return JSON.parse(readFileSync(resultFile, 'utf8')) as SizeResult;
}

async function main(): Promise<void> {
  const a = args();
  const { sizes, rounds, wanted, resultFile } = a;
  if (resultFile) {
    const r = await runSize(sizes[0]!, a);
    writeFileSync(resultFile, JSON.stringify(r));
    process.exit(0);
  }
  const results: SizeResult[] = [];
  for (const n of sizes) {
    const r = runSizeInChild(n, a);
    results.push(r);
    // A row per size as soon as it is known: a larger size may take long or fail.
    console.log(
      `[${n}] join p50/p99 ${percentile(r.join, 50).toFixed(1)}/${percentile(r.join, 99).toFixed(1)} ms, ` +
        `remove p50/p99 ${percentile(r.remove, 50).toFixed(1)}/${percentile(r.remove, 99).toFixed(1)} ms, ` +
        `RSS ${r.rssPerDeviceKB.toFixed(0)} KB/device, CPU ${r.cpuPerChangeMs.toFixed(0)} ms/change; ` +
        `want p50/p99 ${percentile(r.want, 50).toFixed(1)}/${percentile(r.want, 99).toFixed(1)} ms ` +
        `(one at a time ${percentile(r.wantSingle, 50).toFixed(1)}/${percentile(r.wantSingle, 99).toFixed(1)}) ` +
        `(${r.wantRelays} relay, ${r.wantPunches} punch first, ${r.wantMissing} missed), ` +
        `${r.relayAllocations} allocations, ${r.pairsHeld} pairs held of ${r.wantedPairs} wanted; ` +
        `storm ${r.stormSec.toFixed(1)} s (${r.stormRetries} retries, ${r.stormFailed} failed), ` +
        `CPU ${r.stormCpuSec.toFixed(1)} s, ${r.pairsAfterStorm} pairs after`,
    );
  }
  printTable(
    `netmap fan-out, one broker on PostgreSQL with one relay, ${rounds} joins + ${rounds} removals per size, ` +
      `then ${wanted} wanted peers per device, then a reconnection storm (times in ms)`,
    [
      'devices',
      'enroll/s',
      'connect s',
      'snapshots MB',
      'join p50',
      'join p99',
      'remove p50',
      'remove p99',
      'missed',
      'RSS/dev KB',
      'CPU/change ms',
      'want p50',
      'want p99',
      '1 want p50',
      '1 want p99',
      'want missed',
      'CPU/pair ms',
      'pairs held',
      'RSS/dev after KB',
      'storm s',
      'storm CPU s',
      'storm CPU/dev ms',
    ],
    results.map((r) => [
      r.n,
      r.enrollPerSec,
      r.connectSec,
      r.snapshotMB,
      percentile(r.join, 50),
      percentile(r.join, 99),
      percentile(r.remove, 50),
      percentile(r.remove, 99),
      r.missing,
      r.rssPerDeviceKB,
      r.cpuPerChangeMs,
      percentile(r.want, 50),
      percentile(r.want, 99),
      percentile(r.wantSingle, 50),
      percentile(r.wantSingle, 99),
      r.wantMissing,
      r.cpuPerWantedPairMs,
      r.pairsHeld,
      r.rssPerDeviceAfterWantsKB,
      r.stormSec,
      r.stormCpuSec,
      r.stormCpuPerDeviceMs,
    ]),
  );
  const base = results[0]!;
  console.log(
    `\nbaseline (same run, ${base.n} devices): join p99 ${percentile(base.join, 99).toFixed(1)} ms; ` +
      results
        .slice(1)
        .map((r) => `${r.n}: ×${(percentile(r.join, 99) / percentile(base.join, 99)).toFixed(2)}`)
        .join(', '),
  );
  const smallest = results.reduce((m, r) => (r.n < m.n ? r : m));
  console.log(
    `storm CPU per device, baseline measured in the same run (${smallest.n} devices): ` +
      `${smallest.stormCpuPerDeviceMs.toFixed(2)} ms; ` +
      results
        .map(
          (r) =>
            `${r.n}: ${r.stormCpuPerDeviceMs.toFixed(2)} ms ×${(r.stormCpuPerDeviceMs / smallest.stormCpuPerDeviceMs).toFixed(2)}`,
        )
        .join(', ') +
      ' (must not grow with n)',
  );
  console.log('targets: p99 fan-out < 1000 ms at 10k devices, < 20 KB broker RSS per connected device');
  // Child processes and pools are closed; exit rather than wait on a stray handle.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
