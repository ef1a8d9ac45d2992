import { lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ExecOptions, type ExecResult, exec } from '../exec';
import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import type { Namespace } from '../namespace';

/**
 * A throwaway copy of this machine's root to install packages into: an overlay of `/` (writes go
 * to a tmpfs) mounted in a private mount namespace, entered with chroot. dpkg's database, /usr,
 * /etc and /var/lib are the copy's; the host never sees a change. /proc, /sys, /dev and /run are
 * the host's (wireguard-go's sockets in /run are shared by the lab anyway), and so is each
 * `shared` directory, at its own path (the lab's run directory: the package, certificates).
 *
 * One holder process keeps the namespace (and so the mounts) alive; every command enters it with
 * nsenter, then chroots. When the holder and the processes in the copy end, the mounts go with
 * the namespace: nothing is left to unmount.
 */
export class InstallRoot {
  private constructor(
    private readonly holder: LabProcess,
    /** The copy's `/`, a path that exists only inside the holder's mount namespace. */
    readonly merged: string,
  ) {}

  static async create(lab: Lab, shared: readonly string[]): Promise<InstallRoot> {
    const base = join(lab.runDir, 'install-root');
    mkdirSync(base, { recursive: true });
    const merged = join(base, 'merged');
    const binds = shared.map((dir) => `mkdir -p "$M${dir}" && mount --bind "${dir}" "$M${dir}"`);
    const script = [
      'set -e',
      `B='${base}'; M='${merged}'`,
      // A tmpfs for the writable layer: another filesystem than the lower one (/), as overlayfs needs.
      'mount -t tmpfs -o mode=0755 trellis-install-root "$B"',
      'mkdir "$B/upper" "$B/work" "$M"',
      'mount -t overlay -o lowerdir=/,upperdir="$B/upper",workdir="$B/work" trellis-install-root "$M"',
      'for d in proc sys dev run; do mount --rbind "/$d" "$M/$d"; done',
      ...binds,
      'echo install root ready',
      // Until stopped, or until the test runner is gone (killed: no teardown ran).
      'while kill -0 "$PPID" 2>/dev/null; do sleep 2; done',
    ].join('\n');
    // slave: the lab's later network namespaces (mounts under /run/netns) still show up in here,
    // and nothing mounted in here reaches the host.
    const holder = lab.spawnIn(null, 'unshare', ['--mount', '--propagation', 'slave', 'sh', '-c', script], {
      logName: 'install-root',
    });
    await holder.waitForLine(/^install root ready$/, 30_000);
    return new InstallRoot(holder, merged);
  }

  /** argv that runs `argv` inside the copy (from any network namespace). */
  private enter(argv: readonly string[]): string[] {
    return ['nsenter', `--mount=/proc/${this.holder.pid}/ns/mnt`, 'chroot', this.merged, ...argv];
  }

  /** Runs a command in the copy, in the host's network namespace. */
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(null, this.enter(argv), opts);
  }

  /** Starts a long-running command in the copy, in a lab namespace (a device's network). */
  spawn(
    ns: Namespace,
    argv: readonly string[],
    opts: { env?: NodeJS.ProcessEnv; logName?: string } = {},
  ): LabProcess {
    const full = this.enter(argv);
    return ns.spawn(full[0]!, full.slice(1), opts);
  }

  /**
   * The host path of `path` in the copy, for reading it from the test: /proc/PID/root resolves
   * through the holder's mount namespace, where the copy is mounted.
   */
  hostPath(path: string): string {
    return join(`/proc/${this.holder.pid}/root`, this.merged, path);
  }

  /** Ends the holder; the mounts go with the namespace once no process of the copy is left. */
  async destroy(): Promise<void> {
    await this.holder.stop(3_000);
  }
}

/** What systemd would run for the unit: ExecStart's argv and the Environment= assignments. */
export function unitCommand(text: string): { argv: string[]; env: string[] } {
  const values = (key: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1).trim());
  const [execStart, ...more] = values('ExecStart');
  if (!execStart || more.length > 0) throw new Error(`expected one ExecStart= in the unit:\n${text}`);
  return { argv: execStart.split(/\s+/), env: values('Environment').flatMap((v) => v.split(/\s+/)) };
}

/** lstat that says whether the path itself exists (a dangling symlink counts). */
export function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Processes of the package still alive anywhere: by name, by its files, or its wireguard-go. */
export function packageProcesses(ifname: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue; // exited; its parent has not collected it yet
      if (
        comm === 'trellisd' ||
        comm === 'trellis' ||
        cmdline.includes('/usr/lib/trellis/') ||
        (cmdline.includes('wireguard-go') && cmdline.includes(ifname))
      )
        found.push(`${pid} ${comm}: ${cmdline}`);
    } catch {
      // gone while we looked
    }
  }
  return found;
}
