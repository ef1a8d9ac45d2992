/**
 * `pnpm bench failover [--sizes 100,1000] [--others 0.5] [--rounds 10] [--lists spread|same]
 *  [--give-up 120] [--jitter 0] [--log-level warn] [--keep-logs] [--result-file FILE]`
 * Three broker instances (A, B, C) on one fresh PostgreSQL database; N devices on A and N×others on
 * each of B and C, each a real authenticated WebSocket client with the three broker URLs (its own
 * first) that fails over as an agent does. Measures the fan-out of an endpoint change with every
 * device on A (the baseline, same run), spread over three, and after the failover; then SIGKILLs A:
 * per device of A the time until it has a snapshot from B or C, and when the database (so every
 * survivor) stops naming A's connections. Control plane only: no data-plane figure.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_PATHS, CAPABILITY_VERSION, type EnrollResponse } from '@trellis/proto';
import { next, pool } from '../child-ipc';
import { BrokerHttpClient } from '../http-client';
import { fastKeyPair } from '../keys';
import { nowMs } from '../stats';
import { Cleanup, createDatabase, forkChild, logSummary, startCluster } from './cluster';
import { ConnectionWatch, instancePrefixOf } from './db-watch';
import { measureFanOut } from './fan-out';
import type { ClientReply, SimDeviceSpec } from './messages';
import { printLogs, printResults, type SizeResult, sizeLine } from './report';

const ADMIN_DB = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const ENROLL_CONCURRENCY = 32;
const SETUP_TIMEOUT_MS = 15 * 60_000;
/** The acceptance window: a device of the victim not back within this counts as not reconnected. */
const RECONNECT_TIMEOUT_MS = 30_000;
/** After the last reconnection: longer than a lease sweep (~3 s), so late offline marks are seen. */
const OBSERVE_AFTER_MS = 5_000;

type Lists = 'spread' | 'same';
interface Args {
  sizes: number[];
  others: number;
  rounds: number;
  lists: Lists;
  logLevel: string;
  keepLogs: boolean;
  /** Spread of the first dial after a drop (0: at once, as the agent). */
  jitterMs: number;
  /** How long to wait for the victim's devices (the figure is still "within 30 s"). */
  giveUpSec: number;
  /** Every result, raw (per-device times included), as JSON. */
  resultFile?: string;
}

function args(): Args {
  const a = process.argv.slice(2);
  const get = (flag: string) => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const sizes = (get('--sizes') ?? '100,1000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('--sizes takes whole numbers >= 2');
  const others = Number(get('--others') ?? 0.5);
  if (!(others > 0)) throw new Error('--others takes a ratio > 0 (devices on B and on C per device on A)');
  const rounds = Number(get('--rounds') ?? 10);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a whole number >= 1');
  const giveUpSec = Number(get('--give-up') ?? 120);
  if (!(giveUpSec >= RECONNECT_TIMEOUT_MS / 1000)) throw new Error('--give-up takes seconds >= 30');
  const jitterMs = Number(get('--jitter') ?? 0);
  if (!(jitterMs >= 0)) throw new Error('--jitter takes milliseconds >= 0');
  const lists = get('--lists') ?? 'spread';
  if (lists !== 'spread' && lists !== 'same') throw new Error('--lists takes spread or same');
  return {
    sizes,
    others,
    rounds,
    lists,
    logLevel: get('--log-level') ?? 'warn',
    keepLogs: a.includes('--keep-logs'),
    resultFile: get('--result-file'),
    giveUpSec,
    jitterMs,
  };
}

/**
 * A device's broker list, its home first. `same`: every list in one cyclic order, so all of A's
 * devices go to B first; `spread`: every other device has the two others the other way round.
 */
function orderFor(home: number, i: number, lists: Lists): number[] {
  const others = [(home + 1) % 3, (home + 2) % 3];
  if (lists === 'spread' && i % 2 === 1) others.reverse();
  return [home, ...others];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => console.log(s);

async function runSize(n: number, a: Args, cleanup: Cleanup): Promise<SizeResult> {
  const m = Math.max(1, Math.round(n * a.others));
  const total = n + 2 * m;
  const workDir = mkdtempSync(join(tmpdir(), 'trellis-failover-'));
  cleanup.add(() => {
    if (a.keepLogs) log(`[${n}] broker data and logs kept in ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  });
  const databaseUrl = await createDatabase(ADMIN_DB, `trellis_failover_${process.pid}_${n}`, cleanup);
  log(`[${n}] starting brokers A, B, C on one database`);
  const { brokers, setupKey } = await startCluster(cleanup, workDir, databaseUrl, a.logLevel);
  const { certPem, brokerPublicKey } = brokers[0]!.ready;

  log(`[${n}] enrolling ${total} devices (${n} for A, ${m} each for B and C) through all three instances`);
  const http = brokers.map((b) => new BrokerHttpClient(b.ready.url, certPem));
  cleanup.add(() => {
    for (const h of http) h.close();
  });
  const homes = [...Array<number>(n).fill(0), ...Array<number>(m).fill(1), ...Array<number>(m).fill(2)];
  const specs: SimDeviceSpec[] = new Array(total);
  const t0 = nowMs();
  await pool(homes, ENROLL_CONCURRENCY, async (home, i) => {
    const k = fastKeyPair();
    const r = await http[i % 3]!.call<EnrollResponse>('POST', API_PATHS.enroll, {
      protocolVersion: CAPABILITY_VERSION,
      setupKey,
      publicKey: k.publicKey,
      name: `dev-${i}`,
      hostname: `dev-${i}`,
      os: 'linux',
      endpoints: ['192.0.2.1:51820'],
    });
    specs[i] = { deviceId: r.deviceId, ...k, order: orderFor(home, i, a.lists) };
  });
  const enrollSec = (nowMs() - t0) / 1000;

  const clients = forkChild(cleanup, 'client-process.js', []);
  const progress = (m: ClientReply) => {
    if (m.kind === 'progress') log(`[${n}]   ${m.ready} ready`);
  };
  clients.send({
    cmd: 'start',
    brokers: brokers.map((b) => b.ready.url),
    certPem,
    brokerPublicKey,
    devices: specs,
    jitterMs: a.jitterMs,
  });
  await next<ClientReply, 'started'>(clients, 'started');

  log(`[${n}] baseline: all ${total} devices on A`);
  clients.send({ cmd: 'connect', via: 0, timeoutMs: SETUP_TIMEOUT_MS });
  const connected = await next<ClientReply, 'connected'>(clients, 'connected', progress);
  noteSetupFailures(n, connected.failures);
  if (connected.placement[0] !== total)
    throw new Error(
      `baseline setup: devices per instance ${JSON.stringify(connected.placement)}, not all on A`,
    );
  // Let the online deltas of the ramp drain before measuring.
  await sleep(3000);
  const changerIndexes = [0, n, n + m];
  const baseline = await measureFanOut(
    clients,
    changerIndexes.map((index) => ({ index, broker: 0 })),
    a.rounds,
  );

  log(`[${n}] spreading: ${2 * m} devices move to B and C`);
  clients.send({ cmd: 'rehome', timeoutMs: SETUP_TIMEOUT_MS });
  const rehomed = await next<ClientReply, 'connected'>(clients, 'connected', progress);
  noteSetupFailures(n, rehomed.failures);
  const want = [n, m, m];
  if (JSON.stringify(rehomed.placement) !== JSON.stringify(want))
    throw new Error(`spread setup: devices per instance ${JSON.stringify(rehomed.placement)}, not ${want}`);
  await waitForBrokerCounts(brokers, want);
  await sleep(3000);
  const spread = await measureFanOut(
    clients,
    changerIndexes.map((index, broker) => ({ index, broker })),
    a.rounds,
  );

  log(`[${n}] failover: SIGKILL A with ${n} devices on it`);
  const prefix = await instancePrefixOf(
    databaseUrl,
    specs.slice(0, n).map((s) => s.deviceId),
  );
  // One observer on each survivor: both never lose their connection.
  clients.send({ cmd: 'arm-failover', victim: 0, observers: [n, n + m], timeoutMs: a.giveUpSec * 1000 });
  await next<ClientReply, 'armed'>(clients, 'armed');
  const survivors = brokers.slice(1);
  const cpu0 = await Promise.all(survivors.map((b) => b.stats()));
  const watch = new ConnectionWatch(databaseUrl, prefix);
  const failedOver = next<ClientReply, 'failover'>(clients, 'failover');
  const loadAtKill = loadavg()[0]!;
  const killAt = nowMs();
  brokers[0]!.child.kill('SIGKILL');
  watch.start(killAt);
  const fo = await failedOver;
  await watch.cleared(Math.max(0, killAt + a.giveUpSec * 1000 - nowMs()));
  await sleep(OBSERVE_AFTER_MS);
  await watch.stop();
  clients.send({ cmd: 'observed' });
  const observed = await next<ClientReply, 'observed'>(clients, 'observed');
  const cpu1 = await Promise.all(survivors.map((b) => b.stats()));

  const landed = [0, 0, 0];
  for (const d of fo.devices) if (d.readyAt !== null) landed[d.broker] = (landed[d.broker] ?? 0) + 1;
  const back = fo.devices.filter((d) => d.readyAt !== null);
  const result: Omit<SizeResult, 'after' | 'logs'> = {
    n,
    others: m,
    enrollSec,
    connectSec: connected.elapsedMs / 1000,
    rehomeSec: rehomed.elapsedMs / 1000,
    baseline,
    spread,
    victims: fo.devices.length,
    closedMs: fo.devices.flatMap((d) => (d.closedAt === null ? [] : [d.closedAt - killAt])),
    reconnectMs: back.map((d) => d.readyAt! - killAt),
    openMs: back.map((d) => d.openAt! - killAt),
    challengeMs: back.map((d) => d.challengeAt! - killAt),
    notReconnected: fo.devices.filter((d) => d.readyAt === null || d.readyAt - killAt > RECONNECT_TIMEOUT_MS)
      .length,
    retried: back.filter((d) => d.attempts > 1).length,
    resumed: back.filter((d) => d.resumed).length,
    landed,
    collateral: fo.collateral,
    failures: fo.failures,
    staleAtKill: watch.staleAtStart,
    staleClearedMs: watch.staleClearedMs,
    maxOffline: watch.maxOffline,
    maxLockWaits: watch.maxLockWaits,
    maxIdleInTx: watch.maxIdleInTx,
    blockerIdlePct: watch.samplesWithWaiters
      ? (100 * watch.samplesBlockerIdle) / watch.samplesWithWaiters
      : 0,
    maxChangesPerSec: watch.maxSerialRate(),
    changes: (watch.serials.at(-1)?.serial ?? 0) - (watch.serials[0]?.serial ?? 0),
    giveUpSec: a.giveUpSec,
    neverBack: fo.devices.length - back.length,
    shownOffline: Math.max(0, ...observed.observers.map((o) => o.offlineAt.length)),
    onlineAgainMs: observed.observers.flatMap((o) => o.onlineAgainAt.map((t) => t - killAt)),
    loadAtKill,
    clientCpuSec: fo.cpuMs / 1000,
    survivorCpuSec: cpu1.reduce((s, c, i) => s + c.cpuUs - cpu0[i]!.cpuUs, 0) / 1e6,
  };

  log(`[${n}] fan-out with the devices on B and C`);
  const home = fo.devices.find((d) => d.readyAt !== null);
  const after = await measureFanOut(
    clients,
    [
      { index: n, broker: 1 },
      { index: n + m, broker: 2 },
      ...(home ? [{ index: home.index, broker: home.broker }] : []),
    ],
    a.rounds,
  );
  const logs = brokers.flatMap((b) => logSummary(b.logFile).map((l) => ({ broker: b.name, ...l })));
  return { ...result, after, logs };
}

/** Setup attempts that failed were retried on the same instance; worth knowing, not fatal. */
function noteSetupFailures(n: number, failures: Record<string, number>): void {
  const list = Object.entries(failures).map(([m, c]) => `${c}× ${m}`);
  if (list.length > 0) log(`[${n}]   setup attempts retried: ${list.join('; ')}`);
}

/** The instances' own connected-device gauges agree with the clients (closes are processed). */
async function waitForBrokerCounts(
  brokers: Array<{ stats(): Promise<{ connected: number }> }>,
  want: number[],
): Promise<void> {
  let got: number[] = [];
  for (let i = 0; i < 100; i++) {
    got = (await Promise.all(brokers.map((b) => b.stats()))).map((s) => s.connected);
    if (JSON.stringify(got) === JSON.stringify(want)) return;
    await sleep(100);
  }
  throw new Error(
    `the instances count ${JSON.stringify(got)} connected devices, not ${JSON.stringify(want)}`,
  );
}

async function main(): Promise<void> {
  const a = args();
  let cleanup = new Cleanup();
  let stopping = false;
  const abort = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    console.error(why);
    await cleanup.run();
    process.exit(code);
  };
  process.on('SIGINT', () => void abort('interrupted: stopping processes and dropping the database', 130));
  process.on('SIGTERM', () => void abort('terminated: stopping processes and dropping the database', 143));
  process.on('unhandledRejection', (err) => void abort(`unhandled: ${String(err)}`, 1));

  const results: SizeResult[] = [];
  for (const n of a.sizes) {
    cleanup = new Cleanup();
    try {
      const r = await runSize(n, a, cleanup);
      results.push(r);
      log(sizeLine(r));
      printLogs(r);
    } catch (err) {
      await abort(`[${n}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, 1);
      return;
    }
    await cleanup.run();
  }
  printResults(
    results,
    a.rounds,
    a.jitterMs ? `${a.lists}, first dial after a drop jittered 0–${a.jitterMs} ms` : a.lists,
  );
  if (a.resultFile) writeFileSync(a.resultFile, JSON.stringify(results, null, 1));
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
