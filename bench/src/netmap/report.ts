import { percentile, printTable } from '../stats';
import type { DatabaseCounters } from './database-watch';

export interface SizeResult {
  n: number;
  enrollPerSec: number;
  connectSec: number;
  /** Latencies of other requests (`GET info`, every 250 ms) while everyone connected, ms. */
  connectProbe: number[];
  /** PostgreSQL per device connected (WAL, NOTIFY) and per change (all). */
  dbPerConnect: DatabaseCounters;
  dbPerChange: DatabaseCounters;
  snapshotMB: number;
  join: number[];
  remove: number[];
  missing: number;
  rssPerDeviceKB: number;
  /** With `--proxy haproxy`: HAProxy's RSS growth per connected device; null without. */
  proxyRssPerDeviceKB: number | null;
  cpuPerChangeMs: number;
  /** The same less what the broker spent idle (heartbeats) over as long, measured right after. */
  cpuPerChangeNetMs: number;
  /** CPU of one forced full collection after the changes (the bench counted one per change before 2026-12-06). */
  fullGcMs: number;
  /** Distinct device pairs some device wanted a path for. */
  wantedPairs: number;
  /** The burst's pairs and those wanted one at a time after it (every pair the storm should keep). */
  allWantedPairs: number;
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
  /** Clients that came back with a delta from the netmap they held (no snapshot). */
  stormResumed: number;
  stormCpuSec: number;
  stormCpuPerDeviceMs: number;
  pairsAfterStorm: number;
}

const p50p99 = (samples: readonly number[]) => [percentile(samples, 50), percentile(samples, 99)];

const proxyRss = (r: SizeResult) =>
  r.proxyRssPerDeviceKB === null
    ? ''
    : ` (+ HAProxy ${r.proxyRssPerDeviceKB.toFixed(1)} = ${(r.rssPerDeviceKB + r.proxyRssPerDeviceKB).toFixed(1)} KB with it)`;

/** A row per size as soon as it is known: a larger size may take long or fail. */
export function printSizeLine(r: SizeResult): void {
  const c = r.dbPerChange;
  const k = r.dbPerConnect;
  console.log(
    `[${r.n}] PostgreSQL per change: ${c.commits.toFixed(1)} commits, ${c.rowsWritten.toFixed(1)} rows written, ` +
      `${(c.walBytes / 1024).toFixed(1)} KB WAL (whole server), ${c.notifies.toFixed(1)} NOTIFY of ` +
      `${c.notifyBytes.toFixed(0)} bytes; per device connected: ${(k.walBytes / 1024).toFixed(1)} KB WAL, ` +
      `${k.notifies.toFixed(2)} NOTIFY of ${k.notifyBytes.toFixed(0)} bytes`,
  );
  console.log(
    `[${r.n}] connect ${r.connectSec.toFixed(1)} s (other requests meanwhile p50/p99 ` +
      `${percentile(r.connectProbe, 50).toFixed(0)}/${percentile(r.connectProbe, 99).toFixed(0)} ms), ` +
      `join p50/p99 ${percentile(r.join, 50).toFixed(1)}/${percentile(r.join, 99).toFixed(1)} ms, ` +
      `remove p50/p99 ${percentile(r.remove, 50).toFixed(1)}/${percentile(r.remove, 99).toFixed(1)} ms, ` +
      `RSS ${r.rssPerDeviceKB.toFixed(0)} KB/device${proxyRss(r)}, CPU ${r.cpuPerChangeMs.toFixed(0)} ms/change ` +
      `(${r.cpuPerChangeNetMs.toFixed(0)} beyond idle; a forced full GC ${r.fullGcMs.toFixed(0)} ms); ` +
      `want p50/p99 ${percentile(r.want, 50).toFixed(1)}/${percentile(r.want, 99).toFixed(1)} ms ` +
      `(one at a time ${percentile(r.wantSingle, 50).toFixed(1)}/${percentile(r.wantSingle, 99).toFixed(1)}) ` +
      `(${r.wantRelays} relay, ${r.wantPunches} punch first, ${r.wantMissing} missed), ` +
      `${r.relayAllocations} allocations, ${r.pairsHeld} pairs held of ${r.wantedPairs} wanted; ` +
      `storm ${r.stormSec.toFixed(1)} s (${r.stormRetries} retries, ${r.stormFailed} failed, ` +
      `${r.stormResumed} resumed), ` +
      `CPU ${r.stormCpuSec.toFixed(1)} s, ${r.pairsAfterStorm} pairs after (${r.allWantedPairs} wanted in all)`,
  );
}

/** The table of every size, then join p99 and storm CPU per device against the run's first and smallest size. */
export function printReport(results: SizeResult[], rounds: number, wanted: number, proxy?: string): void {
  printTable(
    `netmap fan-out, one broker on PostgreSQL${proxy ? ` behind ${proxy} (TLS there, PROXY v2)` : ''} with one relay, ${rounds} joins + ${rounds} removals per size, ` +
      `then ${wanted} wanted peers per device, then a reconnection storm (times in ms)`,
    [
      'devices',
      'enroll/s',
      'connect s',
      'other req p99',
      'snapshots MB',
      'join p50',
      'join p99',
      'remove p50',
      'remove p99',
      'missed',
      'RSS/dev KB',
      'proxy RSS/dev KB',
      'CPU/change ms',
      'beyond idle ms',
      'full GC ms',
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
      percentile(r.connectProbe, 99),
      r.snapshotMB,
      ...p50p99(r.join),
      ...p50p99(r.remove),
      r.missing,
      r.rssPerDeviceKB,
      r.proxyRssPerDeviceKB ?? '-',
      r.cpuPerChangeMs,
      r.cpuPerChangeNetMs,
      r.fullGcMs,
      ...p50p99(r.want),
      ...p50p99(r.wantSingle),
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
}
