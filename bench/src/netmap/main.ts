/**
 * `pnpm bench netmap [--sizes 1000,5000,10000] [--rounds 5] [--wanted 2] [--proxy haproxy]`
 * `--proxy haproxy`: TLS ends at a local HAProxy that passes plain HTTP with a PROXY v2 header to
 * the broker (--proxy-protocol --plain-http); RSS per device is then also given with HAProxy's.
 * One broker on PostgreSQL (reflectors on) with one relay registered (a fake one in its own
 * process), N devices in one account, each a real authenticated WebSocket client.
 * Measures: enrollment throughput, time for one join / one removal to reach every connected device
 * (p50/p99 over all devices and rounds), broker RSS per connected device, broker CPU per change;
 * then every device wants paths to `--wanted` random peers (time to its `relay` or `punch`, broker
 * CPU per wanted pair, pairs held, RSS per device); then a reconnection storm (every client drops
 * and reconnects at once: time to all connected, broker CPU per device).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectClients, enrollDevices, measureChanges, measureStorm } from './phases';
import { printAgainstPrevious } from './previous';
import { printReport, printSizeLine, type SizeResult } from './report';
import { withNetmapBench } from './setup';
import { measureWants } from './wants';

interface Args {
  sizes: number[];
  rounds: number;
  wanted: number;
  proxy?: 'haproxy';
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
  const proxy = get('--proxy');
  if (proxy !== undefined && proxy !== 'haproxy') throw new Error('--proxy takes haproxy');
  return {
    sizes,
    rounds: Number(get('--rounds') ?? 5),
    wanted,
    ...(proxy ? { proxy } : {}),
    resultFile: get('--result-file'),
  };
}

/** One size, in this process: its phases in order, on a fresh database, broker and relay. */
async function runSize(n: number, { rounds, wanted, proxy }: Args): Promise<SizeResult> {
  return withNetmapBench(n, proxy, async (bench) => {
    const { devices, enrollPerSec } = await enrollDevices(bench, n);
    const { clients, connected, before, after, probe, db } = await connectClients(bench, devices);
    const changes = await measureChanges(bench, clients, n, rounds);
    bench.http.close();
    const wants = await measureWants(bench, clients, devices, wanted, before);
    const storm = await measureStorm(bench, clients, n);
    return {
      n,
      enrollPerSec,
      connectSec: connected.elapsedMs / 1000,
      connectProbe: probe,
      dbPerConnect: db,
      dbPerChange: changes.db,
      snapshotMB: connected.snapshotBytes / 1e6,
      join: changes.join,
      remove: changes.remove,
      missing: changes.missing,
      rssPerDeviceKB: (after.rss - before.rss) / after.connected / 1024,
      proxyRssPerDeviceKB: proxy
        ? ((after.proxyRss ?? 0) - (before.proxyRss ?? 0)) / after.connected / 1024
        : null,
      cpuPerChangeMs: changes.cpuUs / 1000 / (rounds * 2),
      cpuPerChangeNetMs: (changes.cpuUs - changes.idleCpuUs) / 1000 / (rounds * 2),
      fullGcMs: changes.fullGcUs / 1000,
      ...wants,
      ...storm,
    };
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
      ...(a.proxy ? ['--proxy', a.proxy] : []),
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
    printSizeLine(r);
  }
  printReport(results, rounds, wanted, a.proxy);
  printAgainstPrevious(results, join(__dirname, '..', '..', '..'));
  // Child processes and pools are closed; exit rather than wait on a stray handle.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
