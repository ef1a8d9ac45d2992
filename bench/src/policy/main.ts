/**
 * `pnpm bench policy [--sizes 1000,10000] [--skip-compile] [--skip-fanout] [--skip-firewall]
 *   [--compile-devices 10000] [--rules 1000] [--rounds 2] [--settle 2000] [--db postgres|embedded]
 *   [--peers 1000] [--reps 20]`
 *
 * The access policy, end to end, each part against a baseline measured in the same run:
 * 1. the engine (@trellis/policy): a generated 1,000-rule policy over 10,000 devices (~50 tags, 20
 *    groups, 13 blocks, some device names and users): parse, compile, every device's netmap access;
 *    baseline: the default allow-all policy over the same devices;
 * 2. fan-out: one broker (PostgreSQL 15 at 127.0.0.1:5432 or the embedded database) with N
 *    connected simulated devices; one rule change reaching the ~10% of devices it affects (and
 *    nobody else); baseline: one device's tag change;
 * 3. the agent's nftables backend with 1,000 peers in a network namespace (root): one peer's
 *    change applied incrementally; baseline: a full `nft -f` of the same ruleset.
 * Parts 1 and 2 run each in a fresh process (their heaps and sockets never skew the next part).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '@trellis/firewall';
import { type CompileResult, runCompile } from './compile-bench';
import { type FanoutResult, runFanout } from './fanout';
import { type FirewallResult, firewallBlocker, measureFirewall, runFirewall } from './firewall-bench';
import { printCompile, printFanout, printFirewall } from './report';

interface Args {
  sizes: number[];
  skipCompile: boolean;
  skipFanout: boolean;
  skipFirewall: boolean;
  compileDevices: number;
  rules: number;
  rounds: number;
  settleMs: number;
  db: 'postgres' | 'embedded';
  peers: number;
  reps: number;
  child?: string;
  fwLink?: string;
  resultFile?: string;
}

function args(): Args {
  const a = process.argv.slice(2);
  const get = (flag: string) => {
    const i = a.indexOf(flag);
    return i >= 0 ? a[i + 1] : undefined;
  };
  const whole = (flag: string, fallback: number, min: number) => {
    const v = Number(get(flag) ?? fallback);
    if (!Number.isInteger(v) || v < min) throw new Error(`${flag} takes a whole number >= ${min}`);
    return v;
  };
  const sizes = (get('--sizes') ?? '1000').split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 10)) throw new Error('--sizes takes whole numbers >= 10');
  const db = get('--db') ?? 'postgres';
  if (db !== 'postgres' && db !== 'embedded') throw new Error('--db is postgres or embedded');
  return {
    sizes,
    skipCompile: a.includes('--skip-compile'),
    skipFanout: a.includes('--skip-fanout'),
    skipFirewall: a.includes('--skip-firewall'),
    compileDevices: whole('--compile-devices', 10_000, 2),
    rules: whole('--rules', 1000, 4),
    rounds: whole('--rounds', 2, 1),
    settleMs: whole('--settle', 2000, 0),
    db,
    peers: whole('--peers', 1000, 2),
    reps: whole('--reps', 20, 1),
    child: get('--child'),
    fwLink: get('--fw-link'),
    resultFile: get('--result-file'),
  };
}

/**
 * Runs one part in a fresh node process with `execArgv` (started through `prefix`, if any) and
 * returns what it wrote. Its own flags come first: they win over the ones passed along.
 */
function inChild<T>(execArgv: string[], childArgs: string[], prefix: string[] = []): T {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-policy-bench-result-'));
  const resultFile = join(dir, 'result.json');
  const argv = [
    ...prefix,
    process.execPath,
    ...execArgv,
    __filename,
    ...childArgs,
    ...process.argv.slice(2),
    '--result-file',
    resultFile,
  ];
  try {
    const child = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
    if (child.status !== 0) throw new Error(`${childArgs.join(' ')} failed (exit ${child.status})`);
    return JSON.parse(readFileSync(resultFile, 'utf8')) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function childMain(a: Args): Promise<void> {
  let result: unknown;
  if (a.child === 'compile') {
    console.log(`compiling: ${a.rules} rules over ${a.compileDevices} devices, and allow-all over the same`);
    const r = runCompile(a.compileDevices, a.rules);
    for (const x of r) {
      console.log(
        `  ${x.label}: parse ${x.parseMs.toFixed(0)} ms, compile ${x.compileMs.toFixed(0)} ms, ` +
          `${x.classes} classes, every device's access ${(x.accessMs / 1000).toFixed(1)} s`,
      );
    }
    result = r;
  } else if (a.child === 'fanout') {
    result = await runFanout(a.sizes[0]!, {
      rules: a.rules,
      rounds: a.rounds,
      settleMs: a.settleMs,
      db: a.db,
    });
  } else if (a.child === 'firewall') {
    // Started inside the namespace by `ip netns exec`: commands run directly, as an agent's would.
    result = await measureFirewall('process in the namespace', a.fwLink ?? '?', runCommand, a.peers, a.reps);
  } else throw new Error(`unknown part ${a.child}`);
  writeFileSync(a.resultFile!, JSON.stringify(result));
  process.exit(0);
}

async function main(): Promise<void> {
  const a = args();
  if (a.child) return childMain(a);
  const failures: string[] = [];
  let compile: CompileResult[] | undefined;
  const fanout: FanoutResult[] = [];
  if (!a.skipCompile) {
    try {
      compile = inChild<CompileResult[]>(
        ['--expose-gc', '--max-old-space-size=12288'],
        ['--child', 'compile'],
      );
    } catch (err) {
      failures.push(`compile: ${(err as Error).message}`);
    }
  }
  if (!a.skipFanout) {
    for (const n of a.sizes) {
      try {
        const r = inChild<FanoutResult>(
          ['--max-old-space-size=8192'],
          ['--child', 'fanout', '--sizes', String(n)],
        );
        fanout.push(r);
      } catch (err) {
        failures.push(`fan-out at ${n}: ${(err as Error).message}`);
      }
    }
  }
  let firewall: FirewallResult[] | undefined;
  if (!a.skipFirewall) {
    const blocker = firewallBlocker();
    if (blocker) failures.push(`firewall: skipped, ${blocker} (needs root, ip and nft)`);
    else {
      console.log(`\nfirewall: ${a.peers} peers in a network namespace, ${a.reps} changes each way, twice`);
      try {
        firewall = await runFirewall(a.peers, a.reps, (ns, link) =>
          inChild<FirewallResult>(
            [],
            ['--child', 'firewall', '--fw-link', link],
            ['ip', 'netns', 'exec', ns],
          ),
        );
      } catch (err) {
        failures.push(`firewall: ${(err as Error).message}`);
      }
    }
  }

  console.log('\n=== pnpm bench policy ===');
  if (compile) printCompile(compile);
  if (fanout.length > 0) printFanout(fanout, a.settleMs);
  if (firewall) printFirewall(firewall);
  for (const f of failures) console.log(`not measured: ${f}`);
  process.exit(failures.some((f) => !f.includes('skipped')) ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
