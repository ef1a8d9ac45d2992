#!/usr/bin/env node
// `pnpm bench <name> [args]`: builds, then runs one benchmark with a raised file-descriptor limit.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const benches = {
  dashboard: 'bench/dist/dashboard/main.js',
  dns: 'bench/dist/dns/main.js',
  failover: 'bench/dist/failover/main.js',
  fuzz: 'bench/dist/fuzz/main.js',
  gateway: 'bench/dist/gateway/main.js',
  netmap: 'bench/dist/netmap/main.js',
  policy: 'bench/dist/policy/main.js',
  punch: 'bench/dist/punch/main.js',
  relay: 'bench/dist/relay/main.js',
};
const [name, ...rest] = process.argv.slice(2);
if (!name || !(name in benches)) {
  console.error(`usage: pnpm bench <${Object.keys(benches).join('|')}> [args]`);
  process.exit(2);
}
const build = spawnSync('pnpm', ['-s', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const quoted = [join(root, benches[name]), ...rest].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
const run = spawnSync('bash', ['-c', `ulimit -n $(ulimit -Hn); exec node ${quoted}`], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
