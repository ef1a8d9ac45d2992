import { execFile, spawnSync } from 'node:child_process';

export interface ExecOptions {
  /** Kill the command after this long; the error says so. Default 20 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin. */
  input?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** argv that runs `argv` inside network namespace `ns` (null: the root namespace). */
export function inNamespace(ns: string | null, argv: readonly string[]): string[] {
  return ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
}

export class ExecError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
    reason: string,
  ) {
    super(
      `\`${argv.join(' ')}\` ${reason}${stderr.trim() ? `\nstderr: ${stderr.trim()}` : ''}${stdout.trim() ? `\nstdout: ${stdout.trim().slice(0, 2000)}` : ''}`,
    );
    this.name = 'ExecError';
  }
}

/** Runs a command (no shell) in a namespace; rejects with stderr in the message on failure or timeout. */
export function exec(
  ns: string | null,
  argv: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const full = inNamespace(ns, argv);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      full[0]!,
      full.slice(1),
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        env: opts.env ?? process.env,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const reason = e.killed
          ? `timed out after ${timeoutMs} ms`
          : typeof e.code === 'number'
            ? `exited with code ${e.code}`
            : `failed: ${e.message}`;
        reject(new ExecError(full, e.code ?? null, stdout, stderr, reason));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Synchronous variant for teardown paths (signal handlers cannot await). Never throws. */
export function execQuiet(
  ns: string | null,
  argv: readonly string[],
  timeoutMs = 10_000,
): ExecResult & { ok: boolean } {
  const full = inNamespace(ns, argv);
  const r = spawnSync(full[0]!, full.slice(1), { timeout: timeoutMs, encoding: 'utf8' });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
