import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const AGENT_DIR = join(__dirname, '..', '..');
const REPO_ROOT = join(AGENT_DIR, '..', '..');
// Under node_modules: ignored by git and biome; bare imports still resolve from the agent's deps.
export const TEST_BUILD_DIR = join(AGENT_DIR, 'node_modules', '.cache', 'trellis-test-build');

/**
 * Bundles trellisd and trellis with esbuild (workspace packages from their sources) so tests can
 * run the real programs inside network namespaces. npm dependencies stay external and resolve
 * from the agent's node_modules.
 */
export function buildBins(): { daemon: string; cli: string } {
  execFileSync(
    join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'),
    [
      join(AGENT_DIR, 'src', 'daemon.ts'),
      join(AGENT_DIR, 'src', 'cli.ts'),
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
  return { daemon: join(TEST_BUILD_DIR, 'daemon.js'), cli: join(TEST_BUILD_DIR, 'cli.js') };
}
