import type { AdminRequest, AdminResponse } from '@trellis/proto';
import type { Command } from 'commander';
import type { CliIo } from './output';

/** A user mistake: printed as one line, exit code 1, no stack trace. */
export class UsageError extends Error {}

/** The options every admin command has (see `common` in program.ts). */
export interface CommonFlags {
  dataDir: string;
  json?: boolean;
  zone: string;
}

/** What command groups kept outside program.ts get from it. */
export interface CliContext {
  io: CliIo;
  /** Adds --data-dir, --json and --zone. */
  common(cmd: Command): Command;
  /** Sends a request (admin socket or database) and returns the answer as is. */
  call(flags: CommonFlags, req: AdminRequest): Promise<AdminResponse>;
  /** Sends a request and prints the result (or `error: …` with exit code 1). */
  admin(flags: CommonFlags, req: AdminRequest): Promise<void>;
  setExitCode(code: number): void;
}
