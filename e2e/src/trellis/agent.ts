import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StatusResponse } from '@trellis/proto';
import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import type { Device } from '../site';
import { waitFor } from '../wait';
import { type WgDump, wgDump } from '../wireguard';
import { parseJson } from './broker';
import { cleanEnv, repeatFlag, type TrellisBuild } from './paths';

/** One real agent (`trellisd` + `trellis` CLI) on a lab device. */
export class AgentRunner {
  readonly stateDir: string;
  readonly ifname: string;
  private proc: LabProcess | null = null;
  private starts = 0;
  /**
   * `--dns` for the next start. The lab's namespaces share the host's /etc/resolv.conf unless a
   * test gives one its own (/etc/netns/NS/resolv.conf): only the stub, unless a test asks.
   */
  dnsMode = 'stub';
  /** More environment for the next start (e.g. the bus of the namespace's systemd-resolved). */
  extraEnv: NodeJS.ProcessEnv = {};

  constructor(
    lab: Lab,
    readonly device: Device,
    /** WireGuard port for the next start; a new one gives the device fresh NAT mappings. */
    public listenPort: number,
    private readonly build: TrellisBuild,
  ) {
    this.stateDir = join(lab.runDir, `agent-${device.site.name}-${device.name}`);
    mkdirSync(this.stateDir, { recursive: true });
    this.ifname = lab.wgInterfaceName();
  }

  get name(): string {
    return this.device.name;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Starts trellisd and waits for `trellisd ready` (its control socket listens). */
  async start(): Promise<void> {
    this.starts += 1;
    this.proc = this.device.ns.spawn(
      'node',
      [
        this.build.agentDaemon,
        '--state-dir',
        this.stateDir,
        '--interface',
        this.ifname,
        '--listen-port',
        String(this.listenPort),
        // TCP on the WireGuard port's number: free, and distinct for agents sharing a namespace.
        '--metrics-listen',
        `127.0.0.1:${this.listenPort}`,
        '--dns',
        this.dnsMode,
      ],
      {
        env: cleanEnv(this.extraEnv),
        logName: `trellisd-${this.device.site.name}-${this.device.name}-${this.starts}`,
      },
    );
    await this.proc.waitForLine(/trellisd ready/, 60_000);
  }

  async stop(): Promise<void> {
    await this.proc?.stop(10_000);
  }

  /**
   * SIGKILL trellisd alone, as a crash would: not its process group, so its children (wireguard-go)
   * live on as orphans until the next start stops them (or the lab deletes the namespace).
   */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p?.running) return;
    process.kill(p.pid, 'SIGKILL');
    await p.exited;
  }

  /**
   * SIGKILL trellisd and everything it started (wireguard-go), as a power cut would: the tunnel
   * goes with it. Its nftables tables stay (the lab's namespace keeps them, as a dead agent would).
   */
  async crash(): Promise<void> {
    const p = this.proc;
    if (!p?.running) return;
    p.killNow();
    await p.exited;
  }

  /** Deletes the saved netmap (the agent is stopped): the next start waits for the broker's. */
  forgetSavedNetmap(): void {
    rmSync(join(this.stateDir, 'netmap.json'), { force: true });
  }

  async cli(args: string[]): Promise<string> {
    const { stdout } = await this.device.ns.exec(
      ['node', this.build.agentCli, '--state-dir', this.stateDir, ...args],
      { env: cleanEnv(), timeoutMs: 60_000 },
    );
    return stdout;
  }

  /**
   * `trellis up`: one broker, or several instances of one broker (a `--broker` each, tried in this
   * order, and a `--ca-file` for each instance's own certificate).
   */
  async up(opts: {
    broker: string | readonly string[];
    setupKey: string;
    caFile: string | readonly string[];
  }): Promise<void> {
    await this.cli([
      'up',
      ...repeatFlag('--broker', opts.broker),
      '--setup-key',
      opts.setupKey,
      '--name',
      this.device.name,
      ...repeatFlag('--ca-file', opts.caFile),
    ]);
  }

  /** The samples of one metric from trellisd's /metrics, as `labels -> value` (`{}`: no labels). */
  async metric(name: string): Promise<Record<string, number>> {
    const url = `http://127.0.0.1:${this.listenPort}/metrics`;
    const script = `fetch(${JSON.stringify(url)}).then(async (r) => { if (!r.ok) throw new Error(r.status); process.stdout.write(await r.text()); })`;
    const { stdout } = await this.device.ns.exec(['node', '-e', script], { timeoutMs: 30_000 });
    const out: Record<string, number> = {};
    for (const line of stdout.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m && m[1] === name) out[m[2] ?? '{}'] = Number(m[3]);
    }
    return out;
  }

  async status(): Promise<StatusResponse> {
    return parseJson(
      await this.cli(['status', '--json']),
      StatusResponse,
      `${this.name}: trellis status --json`,
    );
  }

  /** Waits until the agent is connected to the broker with its netmap; returns its status. */
  waitConnected(timeoutMs = 60_000): Promise<StatusResponse & { self: NonNullable<StatusResponse['self']> }> {
    return waitFor(
      async () => {
        const s = await this.status();
        return s.state === 'connected' && s.self !== null ? { ...s, self: s.self } : null;
      },
      { timeoutMs, what: `${this.device.site.name}/${this.device.name} connected` },
    );
  }

  wg(): Promise<WgDump> {
    return wgDump(this.device.ns, this.ifname);
  }

  /** Every line trellisd printed so far (JSON log lines). */
  logLines(): readonly string[] {
    return this.proc?.lines ?? [];
  }

  logTail(): string {
    return this.proc?.tail(20) ?? '(not started)';
  }
}
