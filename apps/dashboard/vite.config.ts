import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The proto package is bundled from its TypeScript source: the page parses what the broker
// answers with the same schemas the broker uses.
export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { '@trellis/proto': fileURLToPath(new URL('../../packages/proto/src/index.ts', import.meta.url)) },
  },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
