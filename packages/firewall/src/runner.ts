import { spawn } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Runs a system tool (nft, conntrack, pfctl) without a shell. Resolves with the exit code, rejects
 * only when the tool cannot be started at all (e.g. ENOENT), so callers can tell "missing" apart.
 */
export type CommandRunner = (cmd: string, args: string[], stdin?: string) => Promise<CommandResult>;

export const runCommand: CommandRunner = (cmd, args, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        code: code ?? (signal ? 128 : 1),
      });
    });
    // A tool that exits before reading stdin must not crash us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });

/** A runner that puts `prefix` before every command, e.g. `['ip', 'netns', 'exec', 'ns1']`. */
export function prefixedRunner(prefix: readonly string[], inner: CommandRunner = runCommand): CommandRunner {
  const [head, ...rest] = prefix;
  if (head === undefined) return inner;
  return (cmd, args, stdin) => inner(head, [...rest, cmd, ...args], stdin);
}

/** Runs a command and throws with its output when it exits non-zero. */
export async function runChecked(
  run: CommandRunner,
  cmd: string,
  args: string[],
  stdin?: string,
): Promise<string> {
  const r = await run(cmd, args, stdin);
  if (r.code !== 0) {
    const why = (r.stderr.trim() || r.stdout.trim()).slice(0, 2000);
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${why}`);
  }
  return r.stdout;
}
