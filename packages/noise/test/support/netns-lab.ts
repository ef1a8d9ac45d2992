import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { build } from 'esbuild';

// Test harness: a private network namespace with a real wireguard-go in it, plus node children
// (bundled with esbuild from TypeScript) that run inside the same namespace and report JSON lines.
// Used by the noise and reflector tests; everything it creates is removed by destroy().

const run = promisify(execFile);

export type JsonLine = Record<string, unknown>;

/** Waits for `predicate` to hold, polling; fails after a generous timeout (no timing assertions). */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A node child inside the namespace whose stdout is one JSON object per line. */
export class NodeChild {
  readonly lines: JsonLine[] = [];
  private stderr = '';

  constructor(readonly process: ChildProcess) {
    createInterface({ input: process.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as JsonLine);
      } catch {
        this.stderr += `non-JSON stdout: ${line}\n`;
      }
    });
    process.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
  }

  /** The first line (at or after index `from`) matching `match`, waiting for it. */
  async next(match: (line: JsonLine) => boolean, from = 0, timeoutMs = 30_000): Promise<JsonLine> {
    return waitFor(
      `a matching line from the child (stderr: ${this.stderr.slice(-2000)})`,
      () => this.lines.slice(from).find(match),
      timeoutMs,
    );
  }

  send(command: JsonLine): void {
    this.process.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    await exited;
  }
}

export interface WireguardPeer {
  publicKey: string;
  endpoint: string;
  keepalive: number;
}

export class WireguardGo {
  constructor(
    readonly ifname: string,
    readonly process: ChildProcess,
  ) {}

  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((r) => this.process.once('exit', r));
    this.process.kill('SIGTERM');
    await exited;
  }
}

export class NetnsLab {
  private readonly children: Array<NodeChild | WireguardGo> = [];
  private readonly extraNamespaces: string[] = [];
  private veths = 0;

  private constructor(
    readonly namespace: string,
    private readonly workDir: string,
  ) {}

  static async create(tag: string): Promise<NetnsLab> {
    const namespace = `trl-${tag}-${process.pid}`;
    await run('ip', ['netns', 'add', namespace]);
    await run('ip', ['-n', namespace, 'link', 'set', 'lo', 'up']);
    const workDir = await mkdtemp(join(tmpdir(), `${namespace}-`));
    return new NetnsLab(namespace, workDir);
  }

  /** Another namespace (`<main>-<suffix>`), removed with the lab. */
  async addNamespace(suffix: string): Promise<string> {
    const namespace = `${this.namespace}-${suffix}`;
    await run('ip', ['netns', 'add', namespace]);
    this.extraNamespaces.push(namespace);
    await run('ip', ['-n', namespace, 'link', 'set', 'lo', 'up']);
    return namespace;
  }

  /** A veth pair between two namespaces, each end named and addressed (CIDR) as given, both up. */
  async link(a: { ns: string; name: string; cidr: string }, b: { ns: string; name: string; cidr: string }) {
    // Created under temporary names unique to this lab, since they exist briefly in our own namespace.
    const tmpA = `v${process.pid}x${this.veths}`;
    const tmpB = `v${process.pid}y${this.veths++}`;
    await run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
    for (const [tmp, end] of [
      [tmpA, a],
      [tmpB, b],
    ] as const) {
      await run('ip', ['link', 'set', tmp, 'netns', end.ns]);
      await run('ip', ['-n', end.ns, 'link', 'set', tmp, 'name', end.name]);
      await run('ip', ['-n', end.ns, 'addr', 'add', end.cidr, 'dev', end.name]);
      await run('ip', ['-n', end.ns, 'link', 'set', end.name, 'up']);
    }
  }

  /** Runs a command inside a namespace of the lab (default: the main one) and returns its stdout. */
  async exec(command: string, args: string[], ns = this.namespace): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, command, ...args]);
    return stdout;
  }

  /** Starts `wireguard-go -f ifname` in a namespace and waits for its UAPI socket. */
  async startWireguard(ifname: string, ns = this.namespace): Promise<WireguardGo> {
    const child = spawn('ip', ['netns', 'exec', ns, 'wireguard-go', '-f', ifname], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const wg = new WireguardGo(ifname, child);
    this.children.push(wg);
    await waitFor(`wireguard-go ${ifname} UAPI socket (${stderr})`, () =>
      existsSync(`/var/run/wireguard/${ifname}.sock`) ? true : undefined,
    );
    return wg;
  }

  /** The running wireguard-go for `ifname`, if any. */
  wireguard(ifname: string): WireguardGo | undefined {
    return this.children.find(
      (c): c is WireguardGo => c instanceof WireguardGo && c.ifname === ifname && c.process.exitCode === null,
    );
  }

  hasUapiSocket(ifname: string): boolean {
    return existsSync(`/var/run/wireguard/${ifname}.sock`);
  }

  /** `wg set` with the private key passed through a file, as wg requires; then the link goes up. */
  async configureWireguard(
    ifname: string,
    config: { privateKey: string; listenPort: number; peers: WireguardPeer[] },
    ns = this.namespace,
  ): Promise<void> {
    const keyFile = join(this.workDir, `${ifname}.key`);
    await writeFile(keyFile, `${config.privateKey}\n`, { mode: 0o600 });
    const peerArgs = config.peers.flatMap((p) => [
      'peer',
      p.publicKey,
      'endpoint',
      p.endpoint,
      'persistent-keepalive',
      String(p.keepalive),
    ]);
    await this.exec(
      'wg',
      ['set', ifname, 'private-key', keyFile, 'listen-port', String(config.listenPort), ...peerArgs],
      ns,
    );
    await this.exec('ip', ['link', 'set', ifname, 'up'], ns);
  }

  /** Unix seconds of the latest handshake wireguard-go reports for `peer` (0 = none). */
  async latestHandshake(ifname: string, peer: string, ns = this.namespace): Promise<number> {
    const out = await this.exec('wg', ['show', ifname, 'latest-handshakes'], ns);
    for (const line of out.trim().split('\n')) {
      const [key, seconds] = line.split('\t');
      if (key === peer) return Number(seconds);
    }
    return 0;
  }

  /** Bundles a TypeScript entry (workspace packages mapped to their sources) and runs it in the namespace. */
  async startNode(
    entry: string,
    args: string[],
    aliases: Record<string, string>,
    ns = this.namespace,
  ): Promise<NodeChild> {
    const outfile = join(this.workDir, `child-${this.children.length}.js`);
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      outfile,
      alias: aliases,
      logLevel: 'error',
    });
    const child = new NodeChild(
      spawn('ip', ['netns', 'exec', ns, process.execPath, outfile, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    );
    this.children.push(child);
    return child;
  }

  async destroy(): Promise<void> {
    for (const child of this.children.reverse()) await child.stop().catch(() => undefined);
    for (const ns of [...this.extraNamespaces, this.namespace]) {
      await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    await rm(this.workDir, { recursive: true, force: true });
  }
}
