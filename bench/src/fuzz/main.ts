/**
 * `pnpm bench fuzz [--cases 1000000] [--seed N]`: the fuzz targets that CI runs with 100k cases and
 * seed 1, run longer and with another seed (default: from the clock, printed so a crash can be
 * replayed with `--seed`). Each target is a jest test; this prints cases, time and cases/s per file.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const TARGETS = [
  'apps/agent/test/server-message-fuzz.test.ts',
  'apps/agent/test/ipc-line-fuzz.test.ts',
  'apps/broker/test/unit/wire-fuzz.test.ts',
  'packages/dns/test/dns-fuzz.test.ts',
  'packages/noise/test/message-fuzz.test.ts',
  'apps/relay/test/packet-fuzz.test.ts',
  'packages/portmap/test/pcp-codec.test.ts',
  'packages/portmap/test/natpmp-codec.test.ts',
  'packages/portmap/test/upnp-parsers.test.ts',
];

function arg(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const root = join(__dirname, '..', '..', '..');
const cases = Number(arg('--cases') ?? 1_000_000);
const seed = Number(arg('--seed') ?? Date.now() % 1_000_000);
if (!Number.isInteger(cases) || cases < 1) throw new Error('--cases takes a whole number >= 1');
if (!Number.isInteger(seed)) throw new Error('--seed takes a whole number');

console.log(
  `fuzz: ${cases} cases per target, seed ${seed} (replay: pnpm bench fuzz --cases ${cases} --seed ${seed})`,
);
let failed = 0;
const rows: string[] = [];
for (const file of TARGETS) {
  const started = performance.now();
  const run = spawnSync(
    process.execPath,
    [
      join(root, 'node_modules/jest/bin/jest.js'),
      file,
      '--selectProjects',
      'unit',
      '--runInBand',
      '--silent',
    ],
    {
      cwd: root,
      env: { ...process.env, TRELLIS_FUZZ_CASES: String(cases), TRELLIS_FUZZ_SEED: String(seed) },
      encoding: 'utf8',
    },
  );
  const sec = (performance.now() - started) / 1000;
  const ok = run.status === 0;
  if (!ok) {
    failed++;
    console.log(run.stdout, run.stderr);
  }
  rows.push(`${file.padEnd(46)} ${ok ? 'pass' : 'FAIL'} ${sec.toFixed(1).padStart(8)} s`);
}
console.log(`\n${'target'.padEnd(46)} result     time`);
for (const r of rows) console.log(r);
console.log(
  '\nThe portmap and relay targets take their own case counts (fixed); the others run --cases each.',
);
process.exit(failed === 0 ? 0 : 1);
