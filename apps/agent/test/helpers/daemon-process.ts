import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { waitFor } from '../../src/util/wait';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One trellisd running inside a namespace, with its JSON log lines collected. */
export class DaemonProcess {
  readonly lines: string[] = [];
  private child: ChildProcess | null = null;
  exitCode: number | null = null;

  constructor(
    private readonly netns: string,
    private readonly daemonJs: string,
    private readonly cliJs: string,
    readonly stateDir: string,
    private readonly args: string[],
  ) {}

  get socket(): string {
    return `${this.stateDir}/trellisd.sock`;
  }

  async start(): Promise<void> {
    this.exitCode = null;
    const from = this.lines.length;
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.netns,
        process.execPath,
        this.daemonJs,
        '--state-dir',
        this.stateDir,
        // These namespaces share the host's /etc/resolv.conf: names only from the stub here.
        '--dns',
        'stub',
        ...this.args,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.child = child;
    let partial = '';
    const onData = (b: Buffer) => {
      partial += b.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      this.lines.push(...parts);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      this.exitCode = code ?? -1;
    });
    await waitFor(() => this.exitCode !== null || this.logged('trellisd ready', from), 30_000, 25);
    if (this.exitCode !== null)
      throw new Error(`trellisd exited ${this.exitCode}: ${this.lines.slice(from).join('\n')}`);
  }

  /** SIGTERM and wait for exit; returns the exit code. */
  async stop(): Promise<number> {
    const child = this.child;
    if (!child || this.exitCode !== null) return this.exitCode ?? 0;
    child.kill('SIGTERM');
    await waitFor(() => this.exitCode !== null, 30_000, 25);
    this.child = null;
    return this.exitCode!;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  logged(msg: string, from = 0): boolean {
    return this.lines.slice(from).some((l) => l.includes(`"msg":"${msg}"`));
  }

  cli(args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', this.netns, process.execPath, this.cliJs, '--socket', this.socket, ...args],
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }
}
