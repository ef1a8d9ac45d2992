import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateRelayTokenResponse, CreateSetupKeyResponse, DeviceInfo } from '@trellis/proto';
import type { Host } from '../internet';
import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import { waitFor } from '../wait';
import { cleanEnv, type TrellisBuild } from './paths';

export const BROKER_PORT = 8443;
const ACCOUNT = 'default';

/** One instance of several on one PostgreSQL database (ARCHITECTURE "Cross-instance fan-out"). */
export interface BrokerInstanceOptions {
  /** Names its data directory and logs (`broker-<name>`). */
  name: string;
  /** The shared database, e.g. from LabDatabase. */
  databaseUrl: string;
  /** The instance that made the cluster's certificate: this one serves the same one. */
  tlsFrom?: BrokerRunner;
  /** Addresses of the other instances, put into the certificate this one makes. */
  sans?: string[];
  /** `--public-url` when a proxy is in front (the URL every device uses); default the instance's own. */
  publicUrl?: string;
  /**
   * A certificate every instance serves (with its key), or with --plain-http the proxy's (no key:
   * the fingerprint devices pin is the proxy's). Instead of `tlsFrom`/`sans`.
   */
  tls?: { certFile: string; keyFile?: string };
}

/** The real broker (`apps/broker/dist/cli.js serve`) on an internet host, plus its admin CLI. */
export class BrokerRunner {
  readonly dataDir: string;
  readonly url: string;
  private proc: LabProcess | null = null;
  private starts = 0;
  private readonly logPrefix: string;

  constructor(
    lab: Lab,
    readonly host: Host,
    /** The build the next start runs (a rolling upgrade swaps it between restarts). */
    public build: TrellisBuild,
    /** More `serve` flags (e.g. `--reflector2 HOST:PORT`). */
    private readonly extraArgs: string[] = [],
    private readonly instance?: BrokerInstanceOptions,
  ) {
    this.logPrefix = instance ? `broker-${instance.name}` : 'broker';
    this.dataDir = join(lab.runDir, this.logPrefix);
    mkdirSync(this.dataDir, { recursive: true });
    this.url = `https://${host.address}:${BROKER_PORT}`;
  }

  /** PEM the agents trust (`--ca-file`). */
  get certFile(): string {
    const i = this.instance;
    return i?.tls?.certFile ?? i?.tlsFrom?.certFile ?? join(this.dataDir, 'tls', 'cert.pem');
  }

  private get tlsArgs(): string[] {
    const { tls, tlsFrom: from } = this.instance ?? {};
    if (tls) return ['--tls-cert', tls.certFile, ...(tls.keyFile ? ['--tls-key', tls.keyFile] : [])];
    if (from) return ['--tls-cert', from.certFile, '--tls-key', join(from.dataDir, 'tls', 'key.pem')];
    return (this.instance?.sans ?? []).flatMap((san) => ['--tls-san', san]);
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  async start(): Promise<void> {
    this.starts += 1;
    this.proc = this.host.ns.spawn(
      'node',
      [
        this.build.brokerCli,
        'serve',
        '--data-dir',
        this.dataDir,
        '--listen',
        `0.0.0.0:${BROKER_PORT}`,
        '--public-url',
        this.instance?.publicUrl ?? this.url,
        ...this.tlsArgs,
        ...this.extraArgs,
      ],
      {
        env: cleanEnv(this.instance ? { DATABASE_URL: this.instance.databaseUrl } : {}),
        logName: `${this.logPrefix}-${this.starts}`,
      },
    );
    await this.proc.waitForLine(/trellis-broker ready/, 120_000);
    await waitFor(() => existsSync(this.certFile), {
      timeoutMs: 10_000,
      what: `broker certificate ${this.certFile}`,
    });
  }

  async stop(): Promise<void> {
    await this.proc?.stop(10_000);
  }

  /** SIGKILL: the instance dies without closing anything (its lease runs out). */
  async kill(): Promise<void> {
    await this.proc?.stop(0, 'SIGKILL');
  }

  /** Output of the current (last started) broker process. */
  logLines(): readonly string[] {
    return this.proc?.lines ?? [];
  }

  /** Runs the admin CLI (it talks to the running broker over DATA/admin.sock). */
  async admin(args: string[]): Promise<string> {
    const { stdout } = await this.host.ns.exec(['node', this.build.brokerCli, ...args], {
      env: cleanEnv(this.instance ? { DATABASE_URL: this.instance.databaseUrl } : {}),
      timeoutMs: 60_000,
    });
    return stdout;
  }

  async createSetupKey(): Promise<string> {
    const out = await this.admin([
      'setup-keys',
      'create',
      '--data-dir',
      this.dataDir,
      '--account',
      ACCOUNT,
      '--reusable',
      '--json',
    ]);
    return parseJson(out, CreateSetupKeyResponse, 'setup-keys create --json').key;
  }

  /** A relay token: shared (operator) without `account`, else that account's private relay. */
  async createRelayToken(name: string, account?: string): Promise<string> {
    const out = await this.admin([
      'relay-token',
      'create',
      name,
      '--data-dir',
      this.dataDir,
      ...(account ? ['--account', account] : []),
      '--json',
    ]);
    return parseJson(out, CreateRelayTokenResponse, 'relay-token create --json').token;
  }

  async devices(): Promise<DeviceInfo[]> {
    const out = await this.admin([
      'devices',
      'list',
      '--data-dir',
      this.dataDir,
      '--account',
      ACCOUNT,
      '--json',
    ]);
    return parseJson(out, DeviceInfo.array(), 'devices list --json');
  }

  async renameDevice(idOrName: string, newName: string): Promise<void> {
    await this.admin([
      'devices',
      'rename',
      '--data-dir',
      this.dataDir,
      '--account',
      ACCOUNT,
      idOrName,
      newName,
    ]);
  }

  async removeDevice(name: string): Promise<void> {
    await this.admin(['devices', 'remove', '--data-dir', this.dataDir, '--account', ACCOUNT, name]);
  }
}

/** Parses a CLI's JSON output against its proto schema, quoting the output when it does not match. */
export interface Schema<T> {
  safeParse(v: unknown): { success: true; data: T } | { success: false; error: { message: string } };
}

export function parseJson<T>(stdout: string, schema: Schema<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw new Error(`${what} did not print JSON:\n${stdout.slice(0, 2000)}`);
  }
  const r = schema.safeParse(value);
  if (!r.success)
    throw new Error(
      `${what} printed JSON that does not match its schema: ${r.error.message}\n${stdout.slice(0, 2000)}`,
    );
  return r.data;
}
