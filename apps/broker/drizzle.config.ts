import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` in apps/broker writes a new migration into ./drizzle after a schema change.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
});
