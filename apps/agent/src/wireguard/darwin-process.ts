import type { CommandRunner } from '../util/command-runner';

/**
 * A process as macOS shows it, without /proc: `ps -p PID -o stat=,command=`. Used to find the
 * wireguard-go a crashed run left (its pid is in a file) and to see it gone after a signal.
 */
export interface DarwinProcesses {
  /** The process's command line, or null when there is no such process (or only a zombie). */
  commandOf(pid: number): Promise<string | null>;
  signal(pid: number, signal: NodeJS.Signals): void;
}

export class PsProcesses implements DarwinProcesses {
  constructor(private readonly runner: CommandRunner) {}

  async commandOf(pid: number): Promise<string | null> {
    const r = await this.runner.run('ps', ['-p', String(pid), '-o', 'stat=,command=']);
    return r.code === 0 ? parsePsLine(r.stdout) : null;
  }

  signal(pid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** `STAT COMMAND...` of one `ps` row; null for none, and for a zombie (exited, not yet collected). */
export function parsePsLine(stdout: string): string | null {
  const line = stdout.split('\n').find((l) => l.trim() !== '');
  if (!line) return null;
  const m = /^\s*(\S+)\s+(.*\S)\s*$/.exec(line);
  if (!m || m[1]!.startsWith('Z')) return null;
  return m[2]!;
}

/** Whether a command line is wireguard-go run for a utun (our `wireguard-go -f utun`). */
export function isWireguardGoForUtun(command: string): boolean {
  const args = command.split(/\s+/);
  return args.some((a) => a.endsWith('wireguard-go')) && args.some((a) => /^utun\d*$/.test(a));
}
