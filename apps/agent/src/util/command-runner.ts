import { type ChildProcess, execFile, spawn } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface SpawnOptions {
  /** In a process group (and session) of its own: a signal to the daemon's group passes it by. */
  detached?: boolean;
}

/**
 * Runs system tools (ip, wg, wireguard-go). An interface so tests can run the same code inside a
 * network namespace (`ip netns exec`) without the daemon knowing about namespaces.
 */
export interface CommandRunner {
  run(command: string, args: string[], input?: string): Promise<CommandResult>;
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
}

export class LocalCommandRunner implements CommandRunner {
  run(command: string, args: string[], input?: string): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`cannot run ${command}: ${err.message}`));
          return;
        }
        resolve({ stdout, stderr, code: err ? Number(err.code) : 0 });
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }

  spawn(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  }
}

/** Prefixes every command with `ip netns exec NS`: how tests put a backend inside a namespace. */
export class NetnsCommandRunner implements CommandRunner {
  private readonly inner = new LocalCommandRunner();
  constructor(private readonly namespace: string) {}
  run(command: string, args: string[], input?: string): Promise<CommandResult> {
    return this.inner.run('ip', ['netns', 'exec', this.namespace, command, ...args], input);
  }
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess {
    return this.inner.spawn('ip', ['netns', 'exec', this.namespace, command, ...args], options);
  }
}

/** Runs a command and throws with its stderr when it fails. */
export async function runChecked(runner: CommandRunner, command: string, args: string[], input?: string) {
  const r = await runner.run(command, args, input);
  if (r.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return r.stdout;
}
