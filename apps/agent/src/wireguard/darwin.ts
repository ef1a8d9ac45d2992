import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { realTimers, type Timers } from '../control/timers';
import { isUtunName, UTUN_REQUEST, type UtunName } from '../platform/darwin-interface';
import type { CommandRunner } from '../util/command-runner';
import { waitFor } from '../util/wait';
import type { WireGuardBackend } from './backend';
import { type DarwinProcesses, isWireguardGoForUtun, PsProcesses } from './darwin-process';
import type { WgConfigUpdate, WgDeviceState } from './types';
import { UAPI_SOCKET_DIR, UapiClient } from './uapi-socket';

export interface DarwinBackendOptions {
  /** Filled with the utun wireguard-go got; cleared when it is gone. */
  utun: UtunName;
  runner: CommandRunner;
  logger: Logger;
  /** Holds `wireguard-go.pid` and `wireguard-go.name` (WG_TUN_NAME_FILE), for the next start after a crash. */
  stateDir: string;
  binary?: string;
  /** Where wireguard-go puts `utunN.sock` (tests: a temporary directory). */
  socketDir?: string;
  processes?: DarwinProcesses;
  /** Wait before the first relaunch after a crash; doubled after each failed one, up to 30 s. */
  restartDelayMs?: number;
  /** The restart timer (tests: driven by hand). */
  timers?: Timers;
}

const RESTART_DELAY_MAX_MS = 30_000;

/** Wait before a relaunch, after `failures` failed ones in a row: `firstMs` doubling, capped. */
function restartDelay(failures: number, firstMs: number): number {
  return Math.min(RESTART_DELAY_MAX_MS, firstMs * 2 ** Math.min(failures, 30));
}

/**
 * Only a `running` backend restarts a wireguard-go that died; `restarting` is the wait and the
 * relaunch, again and again with backoff until one succeeds (`failures` so far); from `stopping`
 * on, an exit is expected (whoever sent the signal) and nothing relaunches. Each `restarting` is a
 * new object: a relaunch goes on only while the phase is still the very one it was started in.
 */
type Phase =
  | { readonly name: 'stopped' }
  | { readonly name: 'running' }
  | { readonly name: 'restarting'; readonly failures: number }
  | { readonly name: 'stopping' };
type Restarting = Extract<Phase, { name: 'restarting' }>;

const STOPPED: Phase = { name: 'stopped' };
const RUNNING: Phase = { name: 'running' };
const STOPPING: Phase = { name: 'stopping' };

/**
 * wireguard-go on macOS: asked for `utun`, the kernel picks the number and wireguard-go writes
 * the name to WG_TUN_NAME_FILE (as wg-quick finds it); configured over the same UAPI socket as on
 * Linux. Supervised like the Linux userspace backend: restarted when it dies, listeners re-apply.
 * The utun vanishes with the process, and the kernel drops its addresses and routes with it.
 *
 * It runs in a process group of its own: launchd (or a terminal's Ctrl-C) signals trellisd's whole
 * group, and wireguard-go dying with it would be restarted while trellisd still removes its routes.
 * stop() ends it explicitly, after the daemon's teardown; a SIGKILLed trellisd leaves it running,
 * and the next start() stops it (removeStale).
 */
export class DarwinWireGuardBackend implements WireGuardBackend {
  readonly kind = 'userspace' as const;
  readonly interfaceName: string;
  private readonly pidFile: string;
  private readonly nameFile: string;
  private readonly socketDir: string;
  private readonly processes: DarwinProcesses;
  private uapi: UapiClient | null = null;
  private child: ChildProcess | null = null;
  private phase: Phase = STOPPED;
  private readonly timers: Timers;
  private restartTimer: unknown = null;
  /** The relaunch under way after a crash, for stop() and start() to wait out. */
  private relaunching: Promise<void> | null = null;
  private readonly recreatedListeners: Array<() => void> = [];
  private readonly endpointListeners: Array<() => void> = [];

  constructor(private readonly opts: DarwinBackendOptions) {
    this.interfaceName = opts.utun.logical;
    this.pidFile = join(opts.stateDir, 'wireguard-go.pid');
    this.nameFile = join(opts.stateDir, 'wireguard-go.name');
    this.socketDir = opts.socketDir ?? UAPI_SOCKET_DIR;
    this.processes = opts.processes ?? new PsProcesses(opts.runner);
    this.timers = opts.timers ?? realTimers;
  }

  onRecreated(listener: () => void): void {
    this.recreatedListeners.push(listener);
  }

  async start(): Promise<void> {
    this.phase = RUNNING;
    this.cancelRestartTimer();
    await this.relaunching;
    const utun = this.opts.utun.utun;
    if (this.child && utun && (await socketAlive(this.socketOf(utun)))) return;
    await this.removeStale();
    await this.launch();
  }

  async getState(): Promise<WgDeviceState> {
    return this.client().get();
  }

  async apply(update: WgConfigUpdate): Promise<void> {
    await this.client().set(update);
    if (update.peers.some((p) => p.endpoint !== undefined || p.remove)) {
      for (const l of this.endpointListeners) l();
    }
  }

  /** Called after an apply that set or dropped a peer endpoint (exit routing keeps them direct). */
  onEndpointsChanged(listener: () => void): void {
    this.endpointListeners.push(listener);
  }

  async stop(): Promise<void> {
    this.phase = STOPPING;
    this.cancelRestartTimer();
    // A relaunch past its checks finishes first: the wireguard-go it started is stopped below.
    await this.relaunching;
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await this.forget();
    this.phase = STOPPED;
  }

  private client(): UapiClient {
    if (!this.uapi) throw new Error(`${this.interfaceName}: wireguard-go is not running`);
    return this.uapi;
  }

  private socketOf(utun: string): string {
    return join(this.socketDir, `${utun}.sock`);
  }

  private async launch(): Promise<void> {
    const bin = this.opts.binary ?? 'wireguard-go';
    await mkdir(this.opts.stateDir, { recursive: true });
    // `env` sets the variable: the runner spawns with the daemon's own environment.
    const child = this.opts.runner.spawn(
      '/usr/bin/env',
      [`WG_TUN_NAME_FILE=${this.nameFile}`, bin, '-f', UTUN_REQUEST],
      { detached: true },
    );
    this.child = child;
    let output = '';
    const collect = (b: Buffer) => {
      output = (output + b.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    child.once('exit', (code, signal) => this.onExit(child, code, signal, output));
    if (child.pid) await writeFile(this.pidFile, `${child.pid}\n`, { mode: 0o600 });
    let utun: string | null = null;
    const ready = await Promise.race([
      waitFor(
        async () => {
          // Died (cannot get a utun, say): fails below now, not after the whole wait.
          if (child.exitCode !== null || child.signalCode !== null) return true;
          utun = (await this.readName()) ?? nameFromOutput(output);
          return utun !== null && (await socketAlive(this.socketOf(utun)));
        },
        10_000,
        50,
      ).then(() => null),
      spawnError,
    ]).catch((e: Error) => e);
    const exited = child.exitCode !== null || child.signalCode !== null;
    if (ready instanceof Error || exited || utun === null) {
      const why =
        ready instanceof Error ? ready.message : `exited with ${child.exitCode ?? child.signalCode}`;
      throw new Error(`wireguard-go for ${this.interfaceName} did not start: ${why} ${output.trim()}`);
    }
    this.opts.utun.set(utun);
    this.uapi = new UapiClient(this.socketOf(utun));
    this.opts.logger.info({ pid: child.pid, interface: this.interfaceName, utun }, 'wireguard-go started');
  }

  private onExit(child: ChildProcess, code: number | null, signal: string | null, output: string): void {
    if (this.child !== child) return;
    this.child = null;
    this.uapi = null;
    this.opts.utun.clear();
    // While restarting, the relaunch under way sees this exit (launch() fails) and retries.
    if (this.phase.name !== 'running') return;
    this.opts.logger.error({ code, signal, output: output.trim() }, 'wireguard-go exited; restarting');
    this.scheduleRelaunch({ name: 'restarting', failures: 0 });
  }

  /** Enters `phase` and relaunches after its backoff; returns that wait. */
  private scheduleRelaunch(phase: Restarting): number {
    const delayMs = restartDelay(phase.failures, this.opts.restartDelayMs ?? 1000);
    this.phase = phase;
    this.restartTimer = this.timers.setTimeout(() => {
      this.restartTimer = null;
      const relaunching = this.relaunch(phase).finally(() => {
        if (this.relaunching === relaunching) this.relaunching = null;
      });
      this.relaunching = relaunching;
    }, delayMs);
    return delayMs;
  }

  private async relaunch(phase: Restarting): Promise<void> {
    try {
      await this.removeStale();
      // stop() may have begun meanwhile: a new utun now would outlive the daemon's teardown.
      if (this.phase !== phase) {
        this.opts.logger.info({ phase: this.phase.name }, 'wireguard-go restart cancelled');
        return;
      }
      await this.launch();
      if (this.phase !== phase) return;
      this.phase = RUNNING;
      for (const l of this.recreatedListeners) l();
    } catch (err) {
      // Unless stop() or start() took over, try again later: the mesh is down until one succeeds.
      const retryInMs =
        this.phase === phase
          ? this.scheduleRelaunch({ name: 'restarting', failures: phase.failures + 1 })
          : null;
      this.opts.logger.error({ err: (err as Error).message, retryInMs }, 'wireguard-go restart failed');
    }
  }

  private cancelRestartTimer(): void {
    if (this.restartTimer !== null) this.timers.clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  /** A crashed run may leave its wireguard-go running (and with it the utun), or a dead socket. */
  private async removeStale(): Promise<void> {
    const pid = await readPid(this.pidFile);
    const command = pid === null ? null : await this.processes.commandOf(pid);
    if (pid !== null && command !== null && isWireguardGoForUtun(command)) {
      this.opts.logger.warn({ pid }, 'stopping stale wireguard-go');
      this.processes.signal(pid, 'SIGTERM');
      await waitFor(async () => (await this.processes.commandOf(pid)) === null, 5000, 50).catch(() =>
        this.processes.signal(pid, 'SIGKILL'),
      );
    }
    await this.forget();
  }

  /** Drops the socket of the utun we had (wireguard-go removes it on a clean exit), and our files. */
  private async forget(): Promise<void> {
    const utun = (await this.readName()) ?? this.opts.utun.utun;
    this.uapi = null;
    this.opts.utun.clear();
    if (utun) {
      const socket = this.socketOf(utun);
      if (existsSync(socket) && !(await socketAlive(socket))) await rm(socket, { force: true });
    }
    // wireguard-go creates the name file read-only: removed, never rewritten.
    await rm(this.nameFile, { force: true });
    await rm(this.pidFile, { force: true });
  }

  private async readName(): Promise<string | null> {
    const text = await readFile(this.nameFile, 'utf8').catch(() => '');
    const name = text.trim();
    return isUtunName(name) ? name : null;
  }
}

/** wireguard-go's log lines carry `(utunN)` once it has the device (with LOG_LEVEL=verbose, or errors). */
export function nameFromOutput(output: string): string | null {
  const m = /\((utun\d{1,4})\)/.exec(output);
  return m ? m[1]! : null;
}

async function readPid(file: string): Promise<number | null> {
  const n = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  return Number.isInteger(n) && n > 1 ? n : null;
}

function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
