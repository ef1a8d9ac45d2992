/**
 * `pnpm bench dns [--names 10000] [--seconds 10] [--reps 3] [--clients 1,10]` (needs dnsperf and nsd
 * from Debian, and PostgreSQL). The broker's authoritative server against NSD on the same machine,
 * in the same run, serving the same names: queries per second at saturation (dnsperf from one
 * socket, then from ten as from several resolvers, 100 queries outstanding on each; alternating
 * servers, medians), then the latency at one fixed load both carry (half the lower maximum), p50
 * and p99 from dnsperf's per-query log. Goal: at least half of NSD's rate.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { withDatabase } from '../database';
import { percentile, printTable } from '../stats';
import { type ServerUnderTest, startBroker, startNsd } from './servers';

const ZONE = 'bench.example';
const NSD_PORT = 53_053;
const LATENCY_SECONDS = 5;

function args(): { names: number; seconds: number; reps: number; clients: number[] } {
  const a = process.argv.slice(2);
  const value = (flag: string) => (a.includes(flag) ? a[a.indexOf(flag) + 1] : undefined);
  const whole = (flag: string, dflt: number, min: number) => {
    const n = Number(value(flag) ?? dflt);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag} takes a whole number >= ${min}`);
    return n;
  };
  return {
    names: whole('--names', 10_000, 1),
    seconds: whole('--seconds', 10, 2),
    reps: whole('--reps', 3, 1),
    // One socket is bound by its round trip (100 outstanding); several, as from many resolvers, by CPU.
    clients: (value('--clients') ?? '1,10').split(',').map((c) => {
      const n = Number(c);
      if (!Number.isInteger(n) || n < 1)
        throw new Error('--clients takes whole numbers >= 1, comma-separated');
      return n;
    }),
  };
}

function need(tool: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is missing: apt-get install ${pkg}`);
  }
}

/** One query's bytes (A, recursion not desired), for readiness probes. */
function queryWire(name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([
    Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
}

interface Run {
  qps: number;
  lostPercent: number;
  latenciesMs: number[];
}

/** dnsperf against one server; with `rate`, at that offered load with every latency logged. */
function dnsperf(
  server: ServerUnderTest,
  queries: string,
  seconds: number,
  clients: number,
  rate?: number,
): Promise<Run> {
  const flags = ['-s', '127.0.0.1', '-p', String(server.port), '-d', queries, '-l', String(seconds)];
  flags.push('-q', '100', '-c', String(clients));
  if (rate) flags.push('-Q', String(rate), '-v');
  return new Promise((resolve, reject) => {
    const child = spawn('dnsperf', flags, { stdio: ['ignore', 'pipe', 'pipe'] });
    const latenciesMs: number[] = [];
    let summary = '';
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      const lines = (partial + b.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        // `> NOERROR d1.default.bench.example A 0.000123` per answer (-v); the rest is the summary.
        const m = /^> \S+ .* (\d+\.\d+)$/.exec(line);
        if (m) latenciesMs.push(Number(m[1]) * 1000);
        else summary += `${line}\n`;
      }
    });
    child.stderr.on('data', (b: Buffer) => process.stderr.write(b));
    child.on('error', reject);
    child.on('exit', (code) => {
      const qps = /Queries per second:\s+([\d.]+)/.exec(summary);
      const lost = /Queries lost:\s+\d+ \(([\d.]+)%\)/.exec(summary);
      if (code !== 0 || !qps) reject(new Error(`dnsperf failed (${code}):\n${summary}`));
      else resolve({ qps: Number(qps[1]), lostPercent: Number(lost?.[1] ?? 0), latenciesMs });
    });
  });
}

const median = (xs: number[]) => percentile(xs, 50);

interface Setting {
  names: number;
  queries: string;
  seconds: number;
  reps: number;
  clients: number;
}

/** Saturation runs (alternating), then latency at half the lower rate; prints the table and ratio. */
async function compare(broker: ServerUnderTest, nsd: ServerUnderTest, o: Setting): Promise<void> {
  const servers = [broker, nsd];
  const qps = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  const lost = new Map<string, number[]>(servers.map((s) => [s.name, []]));
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const s of rep % 2 === 1 ? servers : [...servers].reverse()) {
      const r = await dnsperf(s, o.queries, o.seconds, o.clients);
      process.stderr.write(
        `  ${o.clients} clients, rep ${rep}, ${s.name}: ${r.qps.toFixed(0)} qps, ${r.lostPercent}% lost\n`,
      );
      qps.get(s.name)!.push(r.qps);
      lost.get(s.name)!.push(r.lostPercent);
    }
  }
  const rate = Math.floor(Math.min(...servers.map((s) => median(qps.get(s.name)!))) / 2);
  const latency = new Map<string, number[]>();
  for (const s of servers) {
    latency.set(s.name, (await dnsperf(s, o.queries, LATENCY_SECONDS, o.clients, rate)).latenciesMs);
  }
  printTable(
    `DNS: ${o.names} names, ${o.clients} client socket(s) with 100 queries outstanding, ${o.reps} runs of ${o.seconds} s at saturation (medians); latency at ${rate} qps for ${LATENCY_SECONDS} s`,
    ['server', 'qps', 'lost %', 'p50 ms', 'p99 ms', 'answers timed'],
    servers.map((s) => {
      const l = latency.get(s.name)!;
      const q = median(qps.get(s.name)!);
      return [s.name, q, median(lost.get(s.name)!), percentile(l, 50), percentile(l, 99), l.length];
    }),
  );
  const ratio = median(qps.get(broker.name)!) / median(qps.get(nsd.name)!);
  console.log(
    `broker / nsd queries per second: ${ratio.toFixed(2)} (goal >= 0.5: ${ratio >= 0.5 ? 'met' : 'NOT met'})`,
  );
}

async function main(): Promise<void> {
  const { names, seconds, reps, clients } = args();
  need('dnsperf', 'dnsperf');
  need('nsd', 'nsd');
  const root = join(dirname(process.argv[1]!), '..', '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-dns-'));
  const records: Array<[string, string]> = [];
  for (let i = 1; i <= names; i++) {
    records.push([
      `d${i}.default.${ZONE}`,
      `100.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`,
    ]);
  }
  // Every name once per pass, in an order that is the same for both servers and not the zone's.
  const order = records.map(([n], i) => ({ n, k: (i * 7919) % records.length })).sort((a, b) => a.k - b.k);
  const queries = join(dir, 'queries.txt');
  writeFileSync(queries, order.map(({ n }) => `${n} A\n`).join(''));
  const probe = queryWire(records[records.length - 1]![0]);
  try {
    await withDatabase('trellis_bench_dns', async (url) => {
      const broker = await startBroker(root, join(dir, 'broker'), url, ZONE, names, probe);
      const nsd = await startNsd(dir, ZONE, NSD_PORT, records, probe).catch(async (err: Error) => {
        await broker.stop();
        throw err;
      });
      try {
        for (const c of clients) await compare(broker, nsd, { names, queries, seconds, reps, clients: c });
      } finally {
        await nsd.stop();
        await broker.stop();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
