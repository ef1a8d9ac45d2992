#!/usr/bin/env node
import { runCli } from './cli/program';

runCli(process.argv.slice(2)).then((code) => {
  // A failed command exits now: a start that failed may leave handles (a database worker) behind.
  if (code !== 0) process.exit(code);
  process.exitCode = code;
});
