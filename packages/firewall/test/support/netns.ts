import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type CommandRunner, prefixedRunner, runChecked, runCommand } from '../../src';

// Network namespaces for the real nftables tests: everything they create carries the test's pid
// in its name and is removed by destroy(), which afterAll calls even when a test failed.

/** Why the real tests cannot run here, or undefined when they can (root, ip, nft). */
export function realTestBlocker(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  for (const [tool, flag] of [
    ['ip', '-V'],
    ['nft', '--version'],
  ] as const) {
    try {
      execFileSync(tool, [flag], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing`;
    }
  }
  return undefined;
}

export class Netns {
  readonly run: CommandRunner;
  private constructor(readonly name: string) {
    this.run = prefixedRunner(['ip', 'netns', 'exec', name]);
  }

  static async create(name: string): Promise<Netns> {
    await runChecked(runCommand, 'ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  exec(cmd: string, args: string[], stdin?: string): Promise<string> {
    return runChecked(this.run, cmd, args, stdin);
  }

  async destroy(): Promise<void> {
    await runCommand('ip', ['netns', 'del', this.name]);
  }
}

/** A veth pair between two namespaces, each end renamed and addressed (CIDRs) as given, both up. */
export async function veth(
  a: { ns: Netns; name: string; cidrs: string[] },
  b: { ns: Netns; name: string; cidrs: string[] },
): Promise<void> {
  const tmp = [`fw${process.pid}a`, `fw${process.pid}b`];
  await runChecked(runCommand, 'ip', ['link', 'add', tmp[0]!, 'type', 'veth', 'peer', 'name', tmp[1]!]);
  for (const [i, end] of [a, b].entries()) {
    await runChecked(runCommand, 'ip', ['link', 'set', tmp[i]!, 'netns', end.ns.name]);
    await end.ns.exec('ip', ['link', 'set', tmp[i]!, 'name', end.name]);
    for (const cidr of end.cidrs) await end.ns.exec('ip', ['addr', 'add', cidr, 'dev', end.name]);
    await end.ns.exec('ip', ['link', 'set', end.name, 'up']);
  }
}

export type Line = Record<string, unknown>;

/**
 * A node process inside a namespace that serves and opens TCP connections on command (JSON lines on
 * stdin) and reports every socket event as a JSON line. Sockets are named by `tag`.
 */
const SOCKETS_SCRIPT = `
const net = require('net');
const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const socks = new Map();
let accepted = 0;
function watch(tag, s) {
  socks.set(tag, s);
  s.on('data', (d) => { say({ event: 'data', tag, data: d.toString() }); if (tag.startsWith('in:')) s.write(d); });
  s.on('error', (e) => say({ event: 'error', tag, code: e.code }));
  s.on('close', () => say({ event: 'closed', tag }));
}
require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.cmd === 'listen') {
    net.createServer((s) => { const tag = 'in:' + c.port + ':' + ++accepted; say({ event: 'accepted', tag, port: c.port, remote: s.remoteAddress }); watch(tag, s); })
      .listen(c.port, c.host, () => say({ event: 'listening', port: c.port }));
  } else if (c.cmd === 'connect') {
    const s = net.connect({ host: c.host, port: c.port, localAddress: c.localAddress });
    const timer = setTimeout(() => { say({ event: 'timeout', tag: c.tag }); s.destroy(); }, c.timeoutMs);
    s.once('connect', () => { clearTimeout(timer); say({ event: 'connected', tag: c.tag }); });
    s.once('error', () => clearTimeout(timer));
    watch(c.tag, s);
  } else if (c.cmd === 'send') {
    const s = socks.get(c.tag);
    if (s && !s.destroyed) s.write(c.data); else say({ event: 'gone', tag: c.tag });
  }
});
say({ event: 'ready' });
`;

export class SocketsChild {
  readonly lines: Line[] = [];
  private stderr = '';
  private readonly child: ChildProcess;

  constructor(ns: Netns) {
    this.child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', SOCKETS_SCRIPT], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.lines.push(JSON.parse(l) as Line));
    this.child.stderr!.on('data', (c: Buffer) => {
      this.stderr += c.toString();
    });
  }

  send(command: Line): number {
    const from = this.lines.length;
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    return from;
  }

  /** The first line from index `from` on that matches, waiting up to `timeoutMs`. */
  async next(match: (l: Line) => boolean, from = 0, timeoutMs = 10_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(match);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching line; stderr: ${this.stderr.slice(-1000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}
