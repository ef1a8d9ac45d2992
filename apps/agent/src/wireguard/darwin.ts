import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
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
  restartDelayMs?: number;
}

/**
 * Only a `running` backend restarts a wireguard-go that died; `restarting` is the wait and the
 * relaunch; from `stopping` on, an exit is expected (whoever sent the signal) and nothing relaunches.
 */
type Phase = 'stopped' | 'running' | 'restarting' | 'stopping';

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
  private phase: Phase = 'stopped';
  private restartTimer: NodeJS.Timeout | null = null;
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
  }

  onRecreated(listener: () => void): void {
    this.recreatedListeners.push(listener);
  }

  async start(): Promise<void> {
    this.phase = 'running';
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
    this.phase = 'stopping';
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
    this.phase = 'stopped';
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
          utun = (await this.readName()) ?? nameFromOutput(output);
          return utun !== null && (await socketAlive(this.socketOf(utun)));
        },
        10_000,
        50,
      ).then(() => null),
      spawnError,
    ]).catch((e: Error) => e);
    if (ready instanceof Error || child.exitCode !== null || utun === null) {
      const why = ready instanceof Error ? ready.message : `exited with ${child.exitCode}`;
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
    if (this.phase !== 'running') return;
    this.phase = 'restarting';
    this.opts.logger.error({ code, signal, output: output.trim() }, 'wireguard-go exited; restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.relaunching = this.relaunch().finally(() => {
        this.relaunching = null;
      });
    }, this.opts.restartDelayMs ?? 1000);
  }

  private async relaunch(): Promise<void> {
    try {
      await this.removeStale();
      // stop() may have begun meanwhile: a new utun now would outlive the daemon's teardown.
      if (this.phase !== 'restarting') {
        this.opts.logger.info({ phase: this.phase }, 'wireguard-go restart cancelled');
        return;
      }
      await this.launch();
      if (this.phase !== 'restarting') return;
      this.phase = 'running';
      for (const l of this.recreatedListeners) l();
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'wireguard-go restart failed');
    }
  }

  private cancelRestartTimer(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
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
