import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { CommandRunner } from '../util/command-runner';
import { waitFor } from '../util/wait';
import type { WireGuardBackend } from './backend';
import type { WgConfigUpdate, WgDeviceState } from './types';
import { UapiClient, uapiSocketPath } from './uapi-socket';

const RESTART_DELAY_MAX_MS = 30_000;

export interface UserspaceBackendOptions {
  interfaceName: string;
  runner: CommandRunner;
  logger: Logger;
  /** File that records the wireguard-go pid, so a crashed daemon's child can be found and stopped. */
  pidFile: string;
  binary?: string;
  /** Delay before restarting a wireguard-go that died. */
  restartDelayMs?: number;
  /** Where wireguard-go puts `<interface>.sock` (tests: a temporary directory). */
  socketDir?: string;
}

/**
 * wireguard-go, started in the foreground (`-f`) and supervised: if it dies while we want it, it
 * is started again and listeners re-apply the configuration. Never sets WG_PROCESS_FOREGROUND=0
 * (it re-forks endlessly). One launch at a time (`launching`: start()'s, or a restart's), and
 * stop() waits for it, so a launch that was clearing a crash's leftovers when stop() came starts
 * nothing, and one already starting wireguard-go is stopped with it.
 */
export class UserspaceBackend implements WireGuardBackend {
  readonly kind = 'userspace' as const;
  readonly interfaceName: string;
  private readonly uapi: UapiClient;
  private readonly socketPath: string;
  private child: ChildProcess | null = null;
  private wanted = false;
  private launching: Promise<void> | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly recreatedListeners: Array<() => void> = [];

  constructor(private readonly opts: UserspaceBackendOptions) {
    this.interfaceName = opts.interfaceName;
    this.socketPath = opts.socketDir
      ? join(opts.socketDir, `${opts.interfaceName}.sock`)
      : uapiSocketPath(opts.interfaceName);
    this.uapi = new UapiClient(this.socketPath);
  }

  onRecreated(listener: () => void): void {
    this.recreatedListeners.push(listener);
  }

  async start(): Promise<void> {
    this.wanted = true;
    this.cancelRestart();
    await this.launching?.catch(() => undefined);
    if (this.child && (await this.socketAlive())) return;
    await this.launchOnce();
  }

  async getState(): Promise<WgDeviceState> {
    return this.uapi.get();
  }

  async apply(update: WgConfigUpdate): Promise<void> {
    await this.uapi.set(update);
  }

  async stop(): Promise<void> {
    this.wanted = false;
    this.cancelRestart();
    // A launch under way ends first (past its checks it starts wireguard-go, stopped below).
    await this.launching?.catch(() => undefined);
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    // wireguard-go removes its interface on exit; a leftover one (or a foreign one) goes too.
    await this.opts.runner.run('ip', ['link', 'del', this.interfaceName]);
    await rm(this.socketPath, { force: true });
    await rm(this.opts.pidFile, { force: true });
  }

  /** Clears what a crash left, then launches, unless stop() came meanwhile. */
  private launchOnce(): Promise<void> {
    const run = (async () => {
      await this.removeStale();
      if (!this.wanted) throw new Error(`wireguard-go for ${this.interfaceName}: stopped while starting`);
      await this.launch();
    })();
    this.launching = run;
    run.then(
      () => this.launched(run),
      () => this.launched(run),
    );
    return run;
  }

  private launched(run: Promise<void>): void {
    if (this.launching === run) this.launching = null;
  }

  private cancelRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  private async launch(): Promise<void> {
    const bin = this.opts.binary ?? 'wireguard-go';
    const child = this.opts.runner.spawn(bin, ['-f', this.interfaceName]);
    this.child = child;
    let output = '';
    const collect = (b: Buffer) => {
      output = (output + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const exited = new Promise<Error>((resolve) =>
      child.once('exit', (code, signal) => resolve(new Error(`exited with ${code ?? signal}`))),
    );
    child.once('exit', (code, signal) => this.onExit(child, code, signal, output));
    if (child.pid) await writeFile(this.opts.pidFile, `${child.pid}\n`, { mode: 0o600 });
    const ready = await Promise.race([
      waitFor(() => this.socketAlive(), 10_000, 50).then(() => null),
      spawnError,
      exited,
    ]).catch((e: Error) => e);
    if (ready instanceof Error || child.exitCode !== null) {
      // Not left running half-started: the next start (or relaunch) begins from nothing.
      if (this.child === child) this.child = null;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const why = ready instanceof Error ? ready.message : `exited with ${child.exitCode}`;
      throw new Error(`wireguard-go for ${this.interfaceName} did not start: ${why} ${output.trim()}`);
    }
    this.opts.logger.info({ pid: child.pid, interface: this.interfaceName }, 'wireguard-go started');
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null, output: string): void {
    if (this.child !== child) return;
    this.child = null;
    // During a launch, the exit is that launch's failure: its caller (start, or a restart) has it.
    if (!this.wanted || this.launching) return;
    this.opts.logger.error({ code, signal, output: output.trim() }, 'wireguard-go exited; restarting');
    this.scheduleRestart(0);
  }

  /** Relaunches after a wait that doubles with each failed relaunch in a row, up to 30 s. */
  private scheduleRestart(failures: number): void {
    const delay = Math.min(
      RESTART_DELAY_MAX_MS,
      (this.opts.restartDelayMs ?? 1000) * 2 ** Math.min(failures, 30),
    );
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.wanted || this.child || this.launching) return;
      this.launchOnce().then(
        () => {
          for (const l of this.recreatedListeners) l();
        },
        (err: Error) => {
          if (!this.wanted) return;
          this.opts.logger.error({ err: err.message, failures: failures + 1 }, 'wireguard-go restart failed');
          this.scheduleRestart(failures + 1);
        },
      );
    }, delay);
  }

  /** A crash can leave wireguard-go running, its socket, or the interface: clear all three. */
  private async removeStale(): Promise<void> {
    const stalePid = readPid(this.opts.pidFile);
    if (stalePid && isWireguardGo(stalePid, this.interfaceName)) {
      this.opts.logger.warn({ pid: stalePid }, 'stopping stale wireguard-go');
      try {
        process.kill(stalePid, 'SIGTERM');
      } catch {
        // Already gone.
      }
      await waitFor(async () => !isRunning(stalePid), 5000, 50).catch(() => {
        process.kill(stalePid, 'SIGKILL');
      });
    }
    await this.opts.runner.run('ip', ['link', 'del', this.interfaceName]);
    if (existsSync(this.socketPath)) {
      if (await this.socketAlive()) {
        throw new Error(
          `${this.socketPath} belongs to a running WireGuard that is not ours: choose another --interface`,
        );
      }
      await rm(this.socketPath, { force: true });
    }
  }

  private socketAlive(): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect(this.socketPath);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }
}

function readPid(file: string): number | null {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

/** Alive and not a zombie (a zombie has exited; only its parent has not collected it yet). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function isWireguardGo(pid: number, interfaceName: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.some((a) => a.endsWith('wireguard-go')) && args.includes(interfaceName);
  } catch {
    return false;
  }
}
