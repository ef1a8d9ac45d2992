// Builds the tray's Electron main process into one file (dist/main.js): the proto schemas and zod
// bundled in, electron itself left to the Electron runtime that runs it.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  external: ['electron'],
  outfile: join(here, 'dist/main.js'),
  logLevel: 'warning',
});
