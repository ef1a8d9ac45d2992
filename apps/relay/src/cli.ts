#!/usr/bin/env node
import { runCli } from './cli/program';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`trellis-relay: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
