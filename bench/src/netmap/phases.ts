import type { ChildProcess } from 'node:child_process';
import { API_PATHS } from '@trellis/proto';
import { next, pool } from '../child-ipc';
import { fastKeyPair } from '../keys';
import { nowMs } from '../stats';
import { countersBetween, type DatabaseCounters, sumCounters } from './database-watch';
import type { BenchDevice, ClientReply } from './messages';
import type { SizeResult } from './report';
import { type BrokerStats, cpuUsOf, type NetmapBench } from './setup';

const ENROLL_CONCURRENCY = 32;
/** How often another request is timed while everyone connects (the broker must stay responsive). */
const PROBE_EVERY_MS = 250;
/** Until idle PostgreSQL backends have reported their transactions (PGSTAT_IDLE_INTERVAL, 10 s). */
const STATS_SETTLE_MS = 11_000;
/** How long the broker's idle CPU is measured after the changes. */
const IDLE_WINDOW_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Enrolls `n` devices over the HTTP API, ENROLL_CONCURRENCY at a time. */
export async function enrollDevices(
  bench: NetmapBench,
  n: number,
): Promise<{ devices: BenchDevice[]; enrollPerSec: number }> {
  console.log(`[${n}] enrolling ${n} devices`);
  const keys = Array.from({ length: n }, fastKeyPair);
  const devices: BenchDevice[] = new Array(n);
  const t0 = nowMs();
  await pool(keys, ENROLL_CONCURRENCY, async (k, i) => {
    const r = await bench.enroll(`dev-${i}`, k.publicKey);
    devices[i] = { deviceId: r.deviceId, ...k };
  });
  return { devices, enrollPerSec: n / ((nowMs() - t0) / 1000) };
}

/** Connects a WebSocket client per device; broker stats before and after (its deltas drained). */
export async function connectClients(
  bench: NetmapBench,
  devices: BenchDevice[],
): Promise<{
  clients: ChildProcess;
  connected: Extract<ClientReply, { kind: 'connected' }>;
  before: BrokerStats;
  after: BrokerStats;
  /** Latencies of `GET info` requests made meanwhile, ms. */
  probe: number[];
  /** WAL and NOTIFY traffic per device connected (the others lag; see measureChanges). */
  db: DatabaseCounters;
}> {
  const n = devices.length;
  const { ready } = bench;
  const before = await bench.stats();
  console.log(`[${n}] connecting ${n} WebSocket clients`);
  await bench.profile?.start();
  const d0 = await bench.db.read();
  const clients = bench.forkClients();
  clients.send({
    cmd: 'connect',
    url: ready.url,
    certPem: ready.certPem,
    brokerPublicKey: ready.brokerPublicKey,
    devices,
  });
  const { result: connected, probe } = await probed(
    bench,
    next<ClientReply, 'connected'>(clients, 'connected', (m) => {
      if (m.kind === 'progress') console.log(`[${n}]   ${m.connected} connected`);
    }),
  );
  const profiled = await bench.profile?.stop(`broker-connect-${n}`);
  if (profiled) console.log(`[${n}] broker CPU profile of the connect phase: ${profiled}`);
  if (connected.failed > 0) throw new Error(`${connected.failed} clients failed to connect`);
  // Let the online-state deltas of the ramp drain before measuring.
  await new Promise((r) => setTimeout(r, 3000));
  const after = await bench.stats();
  const d = countersBetween(d0, await bench.db.read());
  const db = { ...d, commits: Number.NaN, rowsWritten: Number.NaN };
  for (const k of ['walBytes', 'notifies', 'notifyBytes'] as const) db[k] = d[k] / connected.count;
  return { clients, connected, before, after, probe, db };
}

/** Times a `GET info` every PROBE_EVERY_MS until `during` settles: other requests' latency meanwhile. */
async function probed<T>(bench: NetmapBench, during: Promise<T>): Promise<{ result: T; probe: number[] }> {
  const probe: number[] = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      const t0 = nowMs();
      await bench.http.call('GET', API_PATHS.info);
      probe.push(nowMs() - t0);
      await sleep(PROBE_EVERY_MS);
    }
  })();
  try {
    return { result: await during, probe };
  } finally {
    done = true;
    await loop;
  }
}

/**
 * `rounds` times: one device joins, then it is removed; each time, how long until every client
 * saw it, and the broker's CPU for it.
 */
export async function measureChanges(
  bench: NetmapBench,
  clients: ChildProcess,
  n: number,
  rounds: number,
): Promise<{
  join: number[];
  remove: number[];
  missing: number;
  cpuUs: number;
  idleCpuUs: number;
  fullGcUs: number;
  /** PostgreSQL per change: WAL and NOTIFY within each change's window, commits and rows over all. */
  db: DatabaseCounters;
}> {
  const joinTimes: number[] = [];
  const removeTimes: number[] = [];
  let cpuUs = 0;
  let windowsMs = 0;
  let missing = 0;
  let id = 0;
  let inWindows: DatabaseCounters | undefined;
  const all0 = await bench.db.read();
  const measure = async (
    kind: 'join' | 'remove',
    change: () => Promise<unknown>,
    target: { publicKey?: string; deviceId?: string },
  ) => {
    clients.send({ cmd: 'expect', id: ++id, kind, timeoutMs: 30_000, ...target });
    await next<ClientReply, 'armed'>(clients, 'armed');
    const windowStart = nowMs();
    const s0 = await bench.stats(false);
    const d0 = await bench.db.read();
    const start = nowMs();
    const arrivals = next<ClientReply, 'arrivals'>(clients, 'arrivals');
    await change();
    const got = await arrivals;
    const s1 = await bench.stats(false);
    const d = countersBetween(d0, await bench.db.read());
    inWindows = inWindows ? sumCounters(inWindows, d) : d;
    windowsMs += nowMs() - windowStart;
    cpuUs += cpuUsOf(s0, s1);
    missing += got.missing;
    return got.times.map((t) => t - start);
  };
  await bench.profile?.start();
  for (let r = 0; r < rounds; r++) {
    const k = fastKeyPair();
    let deviceId = '';
    joinTimes.push(
      ...(await measure(
        'join',
        async () => {
          deviceId = (await bench.enroll(`extra-${r}`, k.publicKey)).deviceId;
        },
        { publicKey: k.publicKey },
      )),
    );
    removeTimes.push(
      ...(await measure('remove', () => bench.http.call('DELETE', `${API_PATHS.devices}/${deviceId}`), {
        deviceId,
      })),
    );
  }
  const profiled = await bench.profile?.stop(`broker-changes-${n}`);
  if (profiled)
    console.log(`[${n}] broker CPU profile of the changes (CPU figures inflated by it): ${profiled}`);
  // What the broker spends with nothing changing (heartbeats of every client): the baseline for
  // the CPU each change costs, measured the same way right after. (Measured before, the idle wait
  // let V8 shrink the broker's heap first and the changes cost more.)
  const i0 = await bench.stats(false);
  const idleStart = nowMs();
  await sleep(IDLE_WINDOW_MS);
  const i1 = await bench.stats(false);
  const idleUsPerMs = cpuUsOf(i0, i1) / (nowMs() - idleStart);
  // What one forced full collection costs: this bench counted one in every change's window until
  // 2026-12-06 (its stats collected before reading), so older rows are comparable with this added.
  const fullGcUs = cpuUsOf(i1, await bench.stats(true));
  // Backends report their statistics when idle for PostgreSQL's idle interval (10 s in 15).
  await sleep(STATS_SETTLE_MS);
  const all = countersBetween(all0, await bench.db.read());
  const changes = rounds * 2;
  return {
    db: {
      commits: all.commits / changes,
      rowsWritten: all.rowsWritten / changes,
      walBytes: inWindows!.walBytes / changes,
      notifies: inWindows!.notifies / changes,
      notifyBytes: inWindows!.notifyBytes / changes,
    },
    join: joinTimes,
    remove: removeTimes,
    missing,
    cpuUs,
    idleCpuUs: idleUsPerMs * windowsMs,
    fullGcUs,
  };
}

/** Reconnection storm, as after a broker restart: every client drops and reconnects at once. */
export async function measureStorm(
  bench: NetmapBench,
  clients: ChildProcess,
  n: number,
): Promise<
  Pick<
    SizeResult,
    | 'stormSec'
    | 'stormRetries'
    | 'stormFailed'
    | 'stormResumed'
    | 'stormCpuSec'
    | 'stormCpuPerDeviceMs'
    | 'pairsAfterStorm'
  >
> {
  const { ready } = bench;
  console.log(`[${n}] reconnection storm: ${n} clients drop and reconnect`);
  const st0 = await bench.stats(false);
  await bench.profile?.start();
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
  const st1 = await bench.stats(false);
  const profiled = await bench.profile?.stop(`broker-storm-${n}`);
  if (profiled) console.log(`[${n}] broker CPU profile of the storm: ${profiled}`);
  if (stormed.retries > 0) console.log(`[${n}] storm retries: ${JSON.stringify(stormed.retryReasons)}`);
  if (st1.connected !== n)
    console.error(`[${n}] after the storm the broker counts ${st1.connected} connected`);
  return {
    stormSec: stormed.elapsedMs / 1000,
    stormRetries: stormed.retries,
    stormFailed: stormed.failed,
    stormResumed: stormed.resumed,
    stormCpuSec: cpuUsOf(st0, st1) / 1e6,
    stormCpuPerDeviceMs: cpuUsOf(st0, st1) / 1000 / n,
    pairsAfterStorm: st1.pathPairs,
  };
}
