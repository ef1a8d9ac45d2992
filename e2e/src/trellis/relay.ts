import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../internet';
import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import { cleanEnv, repeatFlag, type TrellisBuild } from './paths';

/** What a relay needs of a broker instance (a BrokerRunner is one). */
export interface BrokerEndpoint {
  url: string;
  /** PEM the relay trusts (`--ca-file`). */
  certFile: string;
}

/** UDP ports a lab relay allocates from, and its TCP-fallback (TLS WebSocket) port. */
export const RELAY_PORTS = '40000-40199';
export const RELAY_TCP_PORT = 443;

/** The real relay (`apps/relay/dist/cli.js`) on an internet host, registered with the lab broker. */
export class RelayRunner {
  readonly stateDir: string;
  private proc: LabProcess | null = null;
  private starts = 0;

  constructor(
    lab: Lab,
    readonly host: Host,
    readonly name: string,
    /** One broker, or several instances of one broker, tried in this order. */
    private readonly broker: BrokerEndpoint | readonly BrokerEndpoint[],
    private readonly token: string,
    private readonly build: TrellisBuild,
    /** `--kernel-forwarding` (default auto, as the relay's own), `--reflector-port`; read at each start. */
    readonly opts: { kernelForwarding?: 'auto' | 'on' | 'off'; reflectorPort?: number } = {},
  ) {
    this.stateDir = join(lab.runDir, `relay-${name}`);
    mkdirSync(this.stateDir, { recursive: true });
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** The relay process (for CPU accounting); null before start. */
  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  private get brokers(): readonly BrokerEndpoint[] {
    return 'url' in this.broker
      ? [this.broker as BrokerEndpoint]
      : (this.broker as readonly BrokerEndpoint[]);
  }

  get address(): string {
    return this.host.address;
  }

  /** Starts the relay and waits until it printed `trellis-relay ready`. */
  async start(): Promise<void> {
    if (!existsSync(this.build.relayCli))
      throw new Error(`missing build output: ${this.build.relayCli}\nrun \`pnpm build\` first`);
    this.starts += 1;
    this.proc = this.host.ns.spawn(
      'node',
      [
        this.build.relayCli,
        ...repeatFlag(
          '--broker',
          this.brokers.map((b) => b.url),
        ),
        ...repeatFlag(
          '--ca-file',
          this.brokers.map((b) => b.certFile),
        ),
        '--name',
        this.name,
        '--listen',
        '0.0.0.0',
        '--public-address',
        this.host.address,
        '--ports',
        RELAY_PORTS,
        '--tcp-listen',
        `0.0.0.0:${RELAY_TCP_PORT}`,
        '--tcp-public-url',
        `wss://${this.host.address}:${RELAY_TCP_PORT}`,
        '--state-dir',
        this.stateDir,
        '--kernel-forwarding',
        this.opts.kernelForwarding ?? 'auto',
        ...(this.opts.reflectorPort ? ['--reflector-port', String(this.opts.reflectorPort)] : []),
      ],
      {
        env: cleanEnv({ TRELLIS_RELAY_TOKEN: this.token }),
        logName: `relay-${this.name}-${this.starts}`,
      },
    );
    await this.proc.waitForLine(/trellis-relay ready/, 60_000);
  }

  async stop(): Promise<void> {
    await this.proc?.stop(10_000);
  }

  /** SIGKILL: a relay that dies without closing anything. */
  async kill(): Promise<void> {
    await this.proc?.stop(5_000, 'SIGKILL');
  }

  logLines(): readonly string[] {
    return this.proc?.lines ?? [];
  }
}
