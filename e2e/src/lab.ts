import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import { execQuiet } from './exec';
import { Host, Internet } from './internet';
import { LabProcess } from './lab-process';
import { labPrefix } from './names';
import { Namespace, type ProcessHost } from './namespace';
import type { RouterKind } from './router-kinds/router-kind';
import { Site } from './site';
import { deleteNamespace, labNamespaces, listWgSockets, removeWgSockets, sweepStale } from './sweep';

export interface LabOptions {
  /** Parent of the run directory (logs, state dirs). Default /tmp/trellis-e2e. */
  baseDir?: string;
  /** Remove leftovers of dead earlier runs first. Default true. */
  sweep?: boolean;
}

const TERM_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The real process object. Under jest, the global `process` is a per-file copy whose listeners the
 * runtime never calls on a signal; `vm.runInThisContext` evaluates in node's main context.
 */
function realProcess(): NodeJS.Process {
  const p = runInThisContext('process') as unknown;
  return typeof p === 'object' && p !== null && typeof (p as NodeJS.Process).on === 'function'
    ? (p as NodeJS.Process)
    : process;
}

/**
 * One lab: an internet namespace plus whatever hosts and sites the test adds. Everything it
 * creates carries `prefix`; destroy() (or the signal handlers) remove all of it.
 */
export class Lab implements ProcessHost {
  readonly prefix: string;
  readonly runDir: string;
  private internetNs: Internet | null = null;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<LabProcess>();
  private readonly sites: Site[] = [];
  private readonly hosts: Host[] = [];
  private destroyed = false;
  private logSeq = 0;
  private wgSeq = 0;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    const real = realProcess();
    try {
      real.stderr.write(`\ntrellis lab ${this.prefix}: ${sig}, tearing down (logs: ${this.runDir})\n`);
      this.destroySync();
    } finally {
      // Exit after the other listeners (other labs) have torn down theirs.
      setImmediate(() => real.exit(sig === 'SIGINT' ? 130 : 143));
    }
  };

  private constructor(opts: LabOptions) {
    // pid for the stale sweep, plus a random id: one process (jest --runInBand) runs many labs.
    this.prefix = labPrefix((randomBytes(2).readUInt16BE(0) % 1296).toString(36).padStart(2, '0'));
    this.runDir = join(opts.baseDir ?? '/tmp/trellis-e2e', `${this.prefix.slice(0, -1)}-${Date.now()}`);
    mkdirSync(this.runDir, { recursive: true });
    for (const s of TERM_SIGNALS) realProcess().on(s, this.onSignal);
  }

  static async create(opts: LabOptions = {}): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, nftables)');
    if (opts.sweep ?? true) sweepStale();
    const lab = new Lab(opts);
    try {
      lab.internetNs = await Internet.create(lab);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  get internet(): Internet {
    if (!this.internetNs) throw new Error('lab not initialised');
    return this.internetNs;
  }

  /** Creates a namespace with loopback up; it is deleted on teardown. */
  async addNamespace(role: string): Promise<Namespace> {
    const name = this.newNamespaceName(role);
    const r = execQuiet(null, ['ip', 'netns', 'add', name]);
    if (!r.ok) throw new Error(`ip netns add ${name} failed: ${r.stderr.trim()}`);
    this.namespaces.push(name);
    const ns = new Namespace(this, name);
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /** A host on the lab internet (e.g. the broker) with one or more public addresses. */
  async addHost(name: string, address?: string | string[]): Promise<Host> {
    const host = await this.internet.addHost(name, address);
    this.hosts.push(host);
    return host;
  }

  /** A site: a router of the given kind and the named devices on its LAN. */
  async addSite(name: string, kind: RouterKind, devices: string[] = []): Promise<Site> {
    // The index is taken before any await, so sites can be built in parallel.
    this.siteSeq += 1;
    const site = await Site.create(this, name, kind, this.siteSeq);
    this.sites.push(site);
    for (const d of devices) await site.addDevice(d);
    await site.startServices(this);
    return site;
  }

  /** A WireGuard interface name unique across namespaces (wireguard-go sockets are global). */
  private siteSeq = 0;

  wgInterfaceName(): string {
    this.wgSeq += 1;
    return `${this.prefix}w${this.wgSeq}`;
  }

  logPath(name: string): string {
    return join(this.runDir, `${name}.log`);
  }

  spawnIn(
    ns: string | null,
    cmd: string,
    args: readonly string[],
    opts: { env?: NodeJS.ProcessEnv; logName?: string } = {},
  ): LabProcess {
    if (this.destroyed) throw new Error('lab already torn down');
    this.logSeq += 1;
    const logName =
      opts.logName ?? `${String(this.logSeq).padStart(2, '0')}-${ns ?? 'root'}-${cmd.split('/').pop()}`;
    const p = new LabProcess(ns, [cmd, ...args], { env: opts.env, logFile: this.logPath(logName) });
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  /** Stops processes gracefully (SIGTERM, then SIGKILL), then deletes every namespace. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all([...this.processes].map((p) => p.stop(3_000)));
    this.destroySync();
  }

  /** Hard teardown that signal handlers can run synchronously. Idempotent. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const s of TERM_SIGNALS) realProcess().off(s, this.onSignal);
    for (const p of this.processes) p.killNow();
    for (const ns of [...this.namespaces].reverse()) deleteNamespace(ns);
    removeWgSockets((ifname) => ifname.startsWith(this.prefix));
  }

  /** Names of this lab's namespaces that still exist (for tests of teardown). */
  leftovers(): string[] {
    const links = execQuiet(null, ['ip', '-o', 'link', 'show']).stdout;
    const leftLinks = links
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
      .filter((n): n is string => n?.startsWith(this.prefix) ?? false);
    const leftNs = labNamespaces().filter((n) => n.startsWith(this.prefix));
    const leftSockets = listWgSockets().filter((n) => n.startsWith(this.prefix));
    return [...leftNs, ...leftLinks, ...leftSockets];
  }

  private newNamespaceName(role: string): string {
    return `${this.prefix}${role}`;
  }
}
