import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { SpawnOptions } from '../../src/util/command-runner';

/** A child process as the backend uses one: pid, stdout/stderr, kill, `exit`. */
export class FakeChild extends EventEmitter {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly signals: string[] = [];
  constructor(
    readonly pid: number,
    private readonly onKill: (child: FakeChild) => void = () => undefined,
    /** Spawned in a process group of its own: a signal to the daemon's group passes it by. */
    readonly detached = false,
  ) {
    super();
  }
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    this.onKill(this);
    return true;
  }
  /** The process ends (killed, or crashed when the test says so). */
  exit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
  }
  asChildProcess(): ChildProcess {
    return this as unknown as ChildProcess;
  }
}

/**
 * wireguard-go on macOS as the backend sees it: run as `env WG_TUN_NAME_FILE=F wireguard-go -f
 * utun`, it "gets" the next utun, writes its name to F and serves UAPI on `<dir>/utunN.sock`: a
 * device that keeps the private key, port and peers it is set, answers `get=1` with them and
 * records every request. Exits (socket removed) on SIGTERM, or when the test crashes it, or on a
 * signal to the daemon's process group (launchd stopping trellisd) unless spawned detached.
 */
export class FakeWireguardGo {
  readonly requests: string[] = [];
  readonly children: FakeChild[] = [];
  private server: Server | null = null;
  private nextUtun: number;
  private nextPid = 50_000;
  private device = new Map<string, string>();
  private peers = new Map<string, Map<string, string[]>>();
  private failing = 0;
  onStarted: ((utun: string) => void) | null = null;

  constructor(
    private readonly socketDir: string,
    firstUtun = 7,
  ) {
    this.nextUtun = firstUtun;
  }

  spawn = (command: string, args: string[], options: SpawnOptions = {}): ChildProcess => {
    const env = args[0]?.startsWith('WG_TUN_NAME_FILE=') ? args[0].slice('WG_TUN_NAME_FILE='.length) : null;
    if (command !== '/usr/bin/env' || !env || args.slice(1).join(' ') !== 'wireguard-go -f utun') {
      throw new Error(`unexpected wireguard-go command line: ${command} ${args.join(' ')}`);
    }
    const child = new FakeChild(
      this.nextPid++,
      (c) => this.stopServing(c, null, 'SIGTERM'),
      options.detached ?? false,
    );
    this.children.push(child);
    if (this.failing > 0) {
      this.failing--;
      return this.failToStart(child);
    }
    const utun = `utun${this.nextUtun++}`;
    this.device = new Map();
    this.peers = new Map();
    const socket = join(this.socketDir, `${utun}.sock`);
    const server = createServer((conn) => {
      let buf = '';
      conn.setEncoding('utf8');
      conn.on('data', (d: string) => {
        buf += d;
        if (!buf.endsWith('\n\n')) return;
        this.requests.push(buf);
        conn.end(this.answer(buf));
        buf = '';
      });
    });
    this.server = server;
    server.listen(socket, () => {
      writeFileSync(env, `${utun}\n`, { mode: 0o400 });
      this.onStarted?.(utun);
    });
    (child as FakeChild & { socket: string }).socket = socket;
    return child.asChildProcess();
  };

  /** The next `count` wireguard-go get no utun: each logs why and exits 1, as the real one does. */
  failNext(count = 1): void {
    this.failing = count;
  }

  private failToStart(child: FakeChild): ChildProcess {
    setImmediate(() => {
      child.stdout.write('ERROR: (utun) 2026/12/07 06:20:00 Failed to create TUN device: resource busy\n');
      child.exit(1, null);
    });
    return child.asChildProcess();
  }

  /** The running wireguard-go dies (SIGKILL from outside): no clean-up of its socket file. */
  crash(): void {
    const child = this.children.at(-1)!;
    this.server?.close();
    this.server = null;
    child.exit(null, 'SIGKILL');
  }

  /**
   * SIGTERM to the daemon's process group, as launchd stops trellisd: the running wireguard-go
   * exits cleanly with it unless it was spawned in a group of its own. Resolves once it has exited.
   */
  signalDaemonGroup(): Promise<void> {
    const child = this.children.at(-1);
    if (!child || child.detached || child.exitCode !== null || child.signalCode !== null) {
      return Promise.resolve();
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.signals.push('SIGTERM (group)');
    this.stopServing(child, null, 'SIGTERM');
    return exited;
  }

  private stopServing(child: FakeChild, code: number | null, signal: NodeJS.Signals): void {
    const socket = (child as FakeChild & { socket: string }).socket;
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.close(() => {
      rmSync(socket, { force: true });
      child.exit(code, signal);
    });
  }

  private answer(request: string): string {
    const lines = request.trim().split('\n');
    if (lines[0] === 'get=1') {
      const out = [...this.device].map(([k, v]) => `${k}=${v}`);
      for (const [key, fields] of this.peers) {
        out.push(`public_key=${key}`);
        for (const [k, vs] of fields) for (const v of vs) out.push(`${k}=${v}`);
      }
      return `${[...out, 'errno=0'].join('\n')}\n\n`;
    }
    let peer: Map<string, string[]> | null = null;
    for (const line of lines.slice(1)) {
      const [k, v] = line.split('=') as [string, string];
      if (k === 'private_key' || k === 'listen_port' || k === 'fwmark') this.device.set(k, v);
      else if (k === 'public_key') {
        peer = this.peers.get(v) ?? new Map();
        this.peers.set(v, peer);
      } else if (k === 'remove' && peer) {
        for (const [key, p] of this.peers) if (p === peer) this.peers.delete(key);
      } else if (k === 'replace_allowed_ips') peer?.set('allowed_ip', []);
      else if (k === 'allowed_ip') peer?.set(k, [...(peer.get(k) ?? []), v]);
      else if (peer) peer.set(k, [v]);
    }
    return 'errno=0\n\n';
  }
}
