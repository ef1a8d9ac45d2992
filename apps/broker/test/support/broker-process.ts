import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

/** `trellis-broker serve` as a process of its own (tests kill it), from the built CLI. */
export interface BrokerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves with the ready line's URL, or with how the process ended before it. */
  outcome(): Promise<{ ready: string } | { exit: number | null; output: string }>;
}

export function serveProcess(dataDir: string, databaseUrl = ''): BrokerProcess {
  const args = [
    'serve',
    '--data-dir',
    dataDir,
    '--listen',
    '127.0.0.1:0',
    '--reflector-port',
    '0',
    '--dns-listen',
    'off',
  ];
  const child = spawn(process.execPath, [CLI, ...args, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: databaseUrl },
  });
  let text = '';
  const listeners = new Set<() => void>();
  const add = (c: Buffer) => {
    text += c.toString();
    for (const fn of listeners) fn();
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => text,
    exited,
    outcome: () =>
      Promise.race([
        new Promise<{ ready: string }>((resolve) => {
          const check = () => {
            const m = /trellis-broker ready (\S+)/.exec(text);
            if (m) resolve({ ready: m[1]! });
          };
          listeners.add(check);
          check();
        }),
        exited.then((exit) => ({ exit, output: text })),
      ]),
  };
}
