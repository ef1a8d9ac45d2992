import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { inNamespace } from './exec';

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Where stdout+stderr go (appended); required so every process leaves a trace for failures. */
  logFile: string;
  cwd?: string;
}

interface LineWaiter {
  re: RegExp;
  resolve: (m: RegExpExecArray) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * A process started inside a namespace (`ip netns exec NS cmd`, which execs cmd, so the pid is the
 * command's own). Output is captured line by line in memory and appended to a log file.
 */
export class LabProcess {
  readonly pid: number;
  readonly lines: string[] = [];
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private readonly waiters = new Set<LineWaiter>();
  private partial = { stdout: '', stderr: '' };

  constructor(
    readonly ns: string | null,
    readonly argv: readonly string[],
    opts: SpawnOptions,
  ) {
    const full = inNamespace(ns, argv);
    this.log = createWriteStream(opts.logFile, { flags: 'a' });
    this.log.write(`# ${new Date().toISOString()} ${ns ?? '(root)'}: ${argv.join(' ')}\n`);
    // Own process group: a Ctrl-C on the terminal reaches only the test runner, which then tears
    // the lab down in order; the group lets stop() reach grandchildren too.
    this.child = spawn(full[0]!, full.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${full.join(' ')}`);
    this.pid = this.child.pid;
    this.child.stdout!.on('data', (d: Buffer) => this.onData('stdout', d));
    this.child.stderr!.on('data', (d: Buffer) => this.onData('stderr', d));
    this.exited = new Promise((resolve) => {
      // 'exit', not 'close': a grandchild holding our pipes must not hide the exit.
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.log.write(`# exited code=${code} signal=${signal}\n`);
        for (const w of this.waiters) this.failWaiter(w, `process exited (code ${code}, signal ${signal})`);
        resolve();
      });
    });
    this.child.on('close', () => this.log.end());
    this.child.on('error', (err) => this.log.write(`# spawn error: ${err.message}\n`));
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Last lines of output, for error messages. */
  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Resolves with the first line (already seen or future) matching `re`. */
  waitForLine(re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    for (const line of this.lines) {
      const m = re.exec(line);
      if (m) return Promise.resolve(m);
    }
    if (!this.running) return Promise.reject(this.error(`exited before printing ${re}`));
    return new Promise((resolve, reject) => {
      const w: LineWaiter = {
        re,
        resolve,
        reject,
        timer: setTimeout(
          () => this.failWaiter(w, `no line matching ${re} within ${timeoutMs} ms`),
          timeoutMs,
        ),
      };
      this.waiters.add(w);
    });
  }

  /**
   * SIGTERM the process itself (its own shutdown must stop what it started), then SIGKILL the
   * whole process group if it has not exited within `graceMs`.
   */
  async stop(graceMs = 5_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Synchronous hard kill for signal handlers. */
  killNow(): void {
    if (this.running) this.signalGroup('SIGKILL');
  }

  private signalGroup(sig: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  private error(what: string): Error {
    return new Error(
      `${this.argv.join(' ')} (pid ${this.pid}, ns ${this.ns}): ${what}\n--- output tail ---\n${this.tail()}`,
    );
  }

  private failWaiter(w: LineWaiter, why: string): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    w.reject(this.error(why));
  }

  private onData(stream: 'stdout' | 'stderr', data: Buffer): void {
    this.log.write(data);
    const text = this.partial[stream] + data.toString('utf8');
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      for (const w of this.waiters) {
        const m = w.re.exec(line);
        if (m) {
          this.waiters.delete(w);
          clearTimeout(w.timer);
          w.resolve(m);
        }
      }
    }
  }
}
