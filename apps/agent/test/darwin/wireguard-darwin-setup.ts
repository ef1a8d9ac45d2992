import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Timers } from '../../src/control/timers';
import { UtunName } from '../../src/platform/darwin-interface';
import { DarwinWireGuardBackend } from '../../src/wireguard/darwin';
import type { DarwinProcesses } from '../../src/wireguard/darwin-process';
import { FakeDarwin } from './fake-darwin';
import { FakeWireguardGo } from './fake-wireguard-go';

/** `ps` as far as the backend asks it: a table of pids, and the signals sent to them. */
export class FakeProcesses implements DarwinProcesses {
  readonly signals: string[] = [];
  constructor(readonly table: Map<number, string>) {}
  async commandOf(pid: number): Promise<string | null> {
    return this.table.get(pid) ?? null;
  }
  signal(pid: number, signal: NodeJS.Signals): void {
    this.signals.push(`${pid} ${signal}`);
    this.table.delete(pid);
  }
}

/** The backend's log messages, for waiting on whichever of some comes first. */
export class LogMessages {
  readonly messages: string[] = [];
  private waiters: Array<() => void> = [];
  readonly logger = pino(
    { level: 'info' },
    {
      write: (line: string) => this.record((JSON.parse(line) as { msg: string }).msg),
    },
  );
  /** A message logged, or an event the test notes among them (a listener called, say). */
  record(message: string): void {
    this.messages.push(message);
    for (const w of this.waiters.splice(0)) w();
  }
  /** The first of `wanted` logged at or after index `from`. */
  async first(wanted: string[], from: number): Promise<string> {
    for (;;) {
      const hit = this.messages.slice(from).find((m) => wanted.includes(m));
      if (hit) return hit;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

export interface SetupOptions {
  processes?: FakeProcesses;
  logger?: Logger;
  /** Restart timers driven by the test, with the real backoff (1 s doubling); without: relaunch at once. */
  timers?: Timers;
}

export function setup(options: SetupOptions = {}) {
  const processes = options.processes ?? new FakeProcesses(new Map());
  const dir = mkdtempSync(join(tmpdir(), 'trl-darwin-'));
  const stateDir = join(dir, 'state');
  const fake = new FakeDarwin();
  const wg = new FakeWireguardGo(dir);
  fake.spawner = wg.spawn;
  const utun = new UtunName('trellis0');
  const backend = new DarwinWireGuardBackend({
    utun,
    runner: fake,
    logger: options.logger ?? pino({ level: 'silent' }),
    stateDir,
    socketDir: dir,
    processes,
    ...(options.timers ? { timers: options.timers } : { restartDelayMs: 0 }),
  });
  return { dir, stateDir, fake, wg, utun, backend, processes };
}
