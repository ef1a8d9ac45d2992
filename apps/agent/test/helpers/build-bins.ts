import { execFileSync } from 'node:child_process';
import { basename, join } from 'node:path';

const AGENT_DIR = join(__dirname, '..', '..');
const REPO_ROOT = join(AGENT_DIR, '..', '..');
// Under node_modules: ignored by git and biome; bare imports still resolve from the agent's deps.
export const TEST_BUILD_DIR = join(AGENT_DIR, 'node_modules', '.cache', 'trellis-test-build');

/**
 * Bundles entry points with esbuild (workspace packages from their sources) so tests can run them
 * inside network namespaces. npm dependencies stay external and resolve from the agent's node_modules.
 * Returns the bundle of each entry (`<name>.js` in TEST_BUILD_DIR).
 */
export function bundle(entries: string[]): string[] {
  execFileSync(
    join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'),
    [
      ...entries,
      '--bundle',
      '--platform=node',
      '--target=node20',
      `--tsconfig=${join(REPO_ROOT, 'tsconfig.json')}`,
      '--external:pino',
      '--external:ws',
      '--external:commander',
      '--external:zod',
      `--outdir=${TEST_BUILD_DIR}`,
      '--log-level=warning',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return entries.map((e) => join(TEST_BUILD_DIR, `${basename(e, '.ts')}.js`));
}

/** trellisd and trellis, bundled (see `bundle`), to run the real programs in namespaces. */
export function buildBins(): { daemon: string; cli: string } {
  const [daemon, cli] = bundle([join(AGENT_DIR, 'src', 'daemon.ts'), join(AGENT_DIR, 'src', 'cli.ts')]);
  return { daemon: daemon!, cli: cli! };
}
