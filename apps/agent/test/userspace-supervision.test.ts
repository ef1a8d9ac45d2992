import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { CommandResult, CommandRunner } from '../src/util/command-runner';
import { waitFor } from '../src/util/wait';
import { UserspaceBackend } from '../src/wireguard/userspace';
import { FakeChild } from './darwin/fake-wireguard-go';

const IFNAME = 'trlsup0';

/** Log lines as objects. */
class LogSink {
  readonly lines: Array<Record<string, unknown>> = [];
  write(line: string): void {
    this.lines.push(JSON.parse(line));
  }
}

/**
 * wireguard-go on Linux as the backend sees it: `wireguard-go -f IF` serves `<dir>/IF.sock` until
 * it is killed or the test crashes it; `failNext` makes the next ones exit at once. `ip link del`
 * can be held (`holdNextLinkDel`) to catch the backend between clearing a crash and launching.
 */
class FakeLinux implements CommandRunner {
  readonly spawned: FakeChild[] = [];
  readonly servers = new Map<FakeChild, Server>();
  failNext = 0;
  private held: { release: () => void } | null = null;
  private holdNext = false;
  private nextPid = 4_000_000; // above any real pid: the pid file never names a live process

  constructor(private readonly dir: string) {}

  async run(command: string, args: string[]): Promise<CommandResult> {
    if (command === 'ip' && args[1] === 'del' && this.holdNext) {
      this.holdNext = false;
      await new Promise<void>((release) => {
        this.held = { release };
      });
    }
    return { stdout: '', stderr: '', code: 0 };
  }

  spawn(command: string, args: string[]): ChildProcess {
    if (command !== 'wireguard-go' || args.join(' ') !== `-f ${IFNAME}`) throw new Error('unexpected spawn');
    const child = new FakeChild(this.nextPid++, (c) => this.end(c, null, 'SIGTERM'));
    this.spawned.push(child);
    if (this.failNext > 0) {
      this.failNext--;
      setImmediate(() => child.exit(1, null));
      return child.asChildProcess();
    }
    const server = createServer((s) => s.destroy()).listen(join(this.dir, `${IFNAME}.sock`));
    this.servers.set(child, server);
    return child.asChildProcess();
  }

  /** The process ends: its socket goes with it. */
  end(child: FakeChild, code: number | null, signal: NodeJS.Signals | null): void {
    const server = this.servers.get(child);
    this.servers.delete(child);
    if (!server) return;
    server.close(() => setImmediate(() => child.exit(code, signal)));
  }

  holdNextLinkDel(): void {
    this.holdNext = true;
  }
  get holding(): boolean {
    return this.held !== null;
  }
  release(): void {
    this.held?.release();
    this.held = null;
  }
  get running(): FakeChild[] {
    return [...this.servers.keys()];
  }
}

describe('userspace WireGuard backend: supervising wireguard-go', () => {
  let dir: string;
  let fake: FakeLinux;
  let logs: LogSink;
  let backend: UserspaceBackend;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-wgsup-'));
    fake = new FakeLinux(dir);
    logs = new LogSink();
    backend = new UserspaceBackend({
      interfaceName: IFNAME,
      runner: fake,
      logger: pino({ level: 'info' }, logs),
      pidFile: join(dir, 'wireguard-go.pid'),
      socketDir: dir,
      restartDelayMs: 1,
    });
  });
  afterEach(async () => {
    fake.release();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stop() while a relaunch clears what a crash left: nothing is started after it', async () => {
    await backend.start();
    fake.holdNextLinkDel();
    fake.end(fake.spawned[0]!, 2, null); // crashes
    await waitFor(() => fake.holding, 5_000, 1);
    const stopped = backend.stop();
    fake.release();
    await stopped;
    expect(fake.spawned).toHaveLength(1);
    expect(fake.running).toEqual([]);
  });

  it('start() during a relaunch waits for it and starts no second wireguard-go', async () => {
    await backend.start();
    fake.holdNextLinkDel();
    fake.end(fake.spawned[0]!, 2, null);
    await waitFor(() => fake.holding, 5_000, 1);
    const started = backend.start();
    fake.release();
    await started;
    expect(fake.spawned).toHaveLength(2);
    expect(fake.running).toEqual([fake.spawned[1]]);
  });

  it('a relaunch that fails is tried again, each wait longer, until one starts', async () => {
    let recreated = 0;
    backend.onRecreated(() => recreated++);
    await backend.start();
    fake.failNext = 2;
    fake.end(fake.spawned[0]!, 2, null);
    await waitFor(() => recreated === 1, 5_000, 1);
    expect(fake.spawned).toHaveLength(4);
    expect(fake.running).toEqual([fake.spawned[3]]);
    const failures = logs.lines.filter((l) => l.msg === 'wireguard-go restart failed').map((l) => l.failures);
    expect(failures).toEqual([1, 2]);
  });

  it('a wireguard-go that exits while starting fails start() with its exit, not after the 10 s wait', async () => {
    fake.failNext = 1;
    await expect(backend.start()).rejects.toThrow(/did not start: exited with 1/);
    expect(logs.lines.filter((l) => l.msg === 'wireguard-go exited; restarting')).toEqual([]);
    await backend.start();
    expect(fake.running).toEqual([fake.spawned[1]]);
  });
});
