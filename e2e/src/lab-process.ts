import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
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

/** How often output is read while someone waits for a line. */
const WAIT_POLL_MS = 20;
/** Reads are synchronous, so one buffer serves every process (lines are copied out of it). */
const chunk = Buffer.alloc(64 * 1024);

/**
 * A process started inside a namespace (`ip netns exec NS cmd`, which execs cmd, so the pid is the
 * command's own). Its stdout and stderr go straight to its log file (appended), and the lines are
 * read back from there whenever `lines` is looked at (and while `waitForLine` waits).
 *
 * Not a pipe to the test process: a pipe fills whenever the test process is busy (each spawn
 * blocks its event loop while it forks; a burst of them stalled it for 10–15 s), and a broker or
 * agent that logs synchronously then blocks on its stdout, which changes what the lab measures.
 */
export class LabProcess {
  readonly pid: number;
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private readonly output: string[] = [];
  private readonly waiters = new Set<LineWaiter>();
  private poller: NodeJS.Timeout | null = null;
  /** Our own writes (header, exit line) and the child's stdout/stderr share this append-mode file. */
  private readonly writeFd: number;
  private readFd: number | null;
  private filesOpen = true;
  private readAt: number;
  private partial: Buffer = Buffer.alloc(0);

  constructor(
    readonly ns: string | null,
    readonly argv: readonly string[],
    opts: SpawnOptions,
  ) {
    const full = inNamespace(ns, argv);
    this.writeFd = openSync(opts.logFile, 'a');
    writeSync(this.writeFd, `# ${new Date().toISOString()} ${ns ?? '(root)'}: ${argv.join(' ')}\n`);
    this.readFd = openSync(opts.logFile, 'r');
    this.readAt = fstatSync(this.readFd).size;
    // Own process group: a Ctrl-C on the terminal reaches only the test runner, which then tears
    // the lab down in order; the group lets stop() reach grandchildren too.
    this.child = spawn(full[0]!, full.slice(1), {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', this.writeFd, this.writeFd],
      detached: true,
    });
    if (this.child.pid === undefined) {
      this.closeFiles();
      throw new Error(`could not spawn ${full.join(' ')}`);
    }
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.pull();
        if (this.partial.length > 0) this.addLine(this.partial.toString('utf8'));
        this.partial = Buffer.alloc(0);
        this.closeFiles(`# exited code=${code} signal=${signal}\n`);
        for (const w of this.waiters) this.failWaiter(w, `process exited (code ${code}, signal ${signal})`);
        resolve();
      });
    });
    this.child.on('error', (err) => {
      if (this.filesOpen) writeSync(this.writeFd, `# spawn error: ${err.message}\n`);
    });
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Every line the process printed so far (stdout and stderr, in the order they reached the file). */
  get lines(): readonly string[] {
    this.pull();
    return this.output;
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
      this.poller ??= setInterval(() => this.pull(), WAIT_POLL_MS);
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
    this.stopPolling();
    w.reject(this.error(why));
  }

  private stopPolling(): void {
    if (this.waiters.size > 0 || this.poller === null) return;
    clearInterval(this.poller);
    this.poller = null;
  }

  /** Reads what the process wrote since the last look (nothing once it exited and was read out). */
  private pull(): void {
    if (this.readFd === null) return;
    for (;;) {
      const n = readSync(this.readFd, chunk, 0, chunk.length, this.readAt);
      if (n <= 0) return;
      this.readAt += n;
      let data = Buffer.concat([this.partial, chunk.subarray(0, n)]);
      for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10)) {
        this.addLine(data.subarray(0, nl).toString('utf8'));
        data = data.subarray(nl + 1);
      }
      this.partial = Buffer.from(data);
    }
  }

  private addLine(line: string): void {
    this.output.push(line);
    for (const w of this.waiters) {
      const m = w.re.exec(line);
      if (m) {
        this.waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
    this.stopPolling();
  }

  private closeFiles(last?: string): void {
    if (!this.filesOpen) return;
    this.filesOpen = false;
    if (this.readFd !== null) closeSync(this.readFd);
    this.readFd = null;
    if (last !== undefined) writeSync(this.writeFd, last);
    closeSync(this.writeFd);
  }
}
