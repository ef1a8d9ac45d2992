import { type ExecOptions, type ExecResult, exec } from './exec';
import type { LabProcess } from './lab-process';

/** What a namespace needs from its lab: process tracking and log files. */
export interface ProcessHost {
  spawnIn(
    ns: string,
    cmd: string,
    args: readonly string[],
    opts?: { env?: NodeJS.ProcessEnv; logName?: string },
  ): LabProcess;
}

/** A network namespace the lab created; every command run "in" it goes through `ip netns exec`. */
export class Namespace {
  constructor(
    private readonly host: ProcessHost,
    readonly name: string,
  ) {}

  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(this.name, argv, opts);
  }

  spawn(
    cmd: string,
    args: readonly string[],
    opts?: { env?: NodeJS.ProcessEnv; logName?: string },
  ): LabProcess {
    return this.host.spawnIn(this.name, cmd, args, opts);
  }

  async sysctl(key: string, value: string | number): Promise<void> {
    await this.exec(['sysctl', '-q', '-w', `${key}=${value}`]);
  }

  /** Loads an nft script atomically (`nft -f -`). */
  async nft(script: string): Promise<void> {
    await this.exec(['nft', '-f', '-'], { input: script });
  }

  /** True if `addr` answers `count` pings; never throws. */
  ping(addr: string, opts: { count?: number; waitS?: number } = {}): Promise<boolean> {
    return ping(this.name, addr, opts);
  }

  /** The namespace's IPv4 addresses on `ifname` (without prefix length). */
  async addresses(ifname: string): Promise<string[]> {
    const { stdout } = await this.exec(['ip', '-4', '-o', 'addr', 'show', 'dev', ifname]);
    return [...stdout.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
  }
}

export async function ping(
  ns: string | null,
  addr: string,
  opts: { count?: number; waitS?: number } = {},
): Promise<boolean> {
  const count = opts.count ?? 1;
  const waitS = opts.waitS ?? 2;
  try {
    await exec(ns, ['ping', '-n', '-q', '-c', String(count), '-W', String(waitS), '-i', '0.2', addr], {
      timeoutMs: (count * 0.2 + waitS + 5) * 1000,
    });
    return true;
  } catch {
    return false;
  }
}
