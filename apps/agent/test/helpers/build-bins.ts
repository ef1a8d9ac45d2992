import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const EXTERNAL = ['pino', 'ws', 'commander', 'zod', 'koffi'];

export function bundle(entries: string[], outdir = TEST_BUILD_DIR, external = EXTERNAL): string[] {
  execFileSync(
    join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'),
    [
      ...entries,
      '--bundle',
      '--platform=node',
      '--target=node20',
      `--tsconfig=${join(REPO_ROOT, 'tsconfig.json')}`,
      ...external.map((m) => `--external:${m}`),
      `--outdir=${outdir}`,
      '--log-level=warning',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return entries.map((e) => join(outdir, `${basename(e, '.ts')}.js`));
}

/** trellisd and trellis, bundled (see `bundle`), to run the real programs in namespaces. */
export function buildBins(): { daemon: string; cli: string } {
  const [daemon, cli] = bundle([join(AGENT_DIR, 'src', 'daemon.ts'), join(AGENT_DIR, 'src', 'cli.ts')]);
  return { daemon: daemon!, cli: cli! };
}

/**
 * trellis as one self-contained file in a fresh world-readable directory, for running it as another
 * user: the checkout (and its node_modules) may sit where that user cannot go (a `mktemp -d` clone).
 */
export function standaloneCli(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cli-'));
  chmodSync(dir, 0o755);
  return bundle([join(AGENT_DIR, 'src', 'cli.ts')], dir, [])[0]!;
}
