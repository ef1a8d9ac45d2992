import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Host } from '../internet';
import type { Lab } from '../lab';
import type { LabProcess } from '../lab-process';
import { waitFor } from '../wait';

/** A certificate and key made for the lab (self-signed, IP SANs). */
export interface LabCertificate {
  certFile: string;
  keyFile: string;
  /** Certificate then key, as HAProxy's `crt` wants them. */
  pemFile: string;
}

/** A self-signed certificate for these addresses, as an operator's public certificate would be. */
export function makeLabCertificate(dir: string, ipSans: readonly string[]): LabCertificate {
  mkdirSync(dir, { recursive: true });
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=trellis-lab',
      '-addext',
      `subjectAltName=${ipSans.map((a) => `IP:${a}`).join(',')}`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'pipe' },
  );
  const pemFile = join(dir, 'cert-and-key.pem');
  writeFileSync(pemFile, `${readFileSync(certFile, 'utf8')}${readFileSync(keyFile, 'utf8')}`, {
    mode: 0o600,
  });
  return { certFile, keyFile, pemFile };
}

export interface HaproxyBackend {
  name: string;
  address: string;
  port: number;
}

/**
 * `tls`: infra/haproxy/haproxy.cfg's way (TLS ends here, plain HTTP to the instances with a PROXY
 * v2 header, health checks send one too). `passthrough`: TCP straight through, the instances do
 * TLS themselves (brokers from before --proxy-protocol); health checks are HTTPS.
 */
export type HaproxyMode = { kind: 'tls'; pemFile: string } | { kind: 'passthrough' };

/** HAProxy's public port here, as in infra/compose/compose.yaml. */
export const HAPROXY_PORT = 443;

/** A real HAProxy (`haproxy -db -f`) on a lab internet host, in front of broker instances. */
export class HaproxyRunner {
  readonly dir: string;
  readonly url: string;
  private proc: LabProcess | null = null;

  constructor(
    lab: Lab,
    readonly host: Host,
    private readonly mode: HaproxyMode,
    private readonly backends: readonly HaproxyBackend[],
  ) {
    this.dir = join(lab.runDir, 'haproxy');
    mkdirSync(this.dir, { recursive: true });
    this.url = `https://${host.address}`;
  }

  get statsSocket(): string {
    return join(this.dir, 'stats.sock');
  }

  /** The configuration: infra/haproxy/haproxy.cfg's settings, less Docker's resolvers and limits. */
  config(): string {
    const tls = this.mode.kind === 'tls';
    // infra's health check cadence: a dead instance is out after two failed checks 2 s apart.
    const check = tls
      ? 'send-proxy-v2 check check-send-proxy inter 2s fall 2 rise 2'
      : 'check check-ssl verify none inter 2s fall 2 rise 2';
    return [
      'global',
      `  stats socket ${this.statsSocket} mode 600 level admin`,
      'defaults',
      `  mode ${tls ? 'http' : 'tcp'}`,
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      ...(tls ? ['  timeout http-request 10s', '  timeout http-keep-alive 10s'] : []),
      '  timeout tunnel 1h',
      '  timeout client-fin 10s',
      // A connection to an instance that died before its checks noticed goes to another one.
      '  retries 3',
      '  option redispatch',
      'frontend https',
      tls
        ? `  bind :${HAPROXY_PORT} ssl crt ${this.mode.kind === 'tls' ? this.mode.pemFile : ''} alpn http/1.1`
        : `  bind :${HAPROXY_PORT}`,
      ...(tls ? ['  http-request set-header X-Forwarded-Proto https'] : []),
      '  default_backend brokers',
      'backend brokers',
      '  balance leastconn',
      '  option httpchk GET /healthz',
      '  http-check expect status 200',
      `  default-server ${check} on-marked-down shutdown-sessions`,
      ...this.backends.map((b) => `  server ${b.name} ${b.address}:${b.port}`),
      '',
    ].join('\n');
  }

  /** Starts HAProxy; resolves once its stats socket answers and every instance is up. */
  async start(): Promise<void> {
    const cfg = join(this.dir, 'haproxy.cfg');
    writeFileSync(cfg, this.config());
    this.proc = this.host.ns.spawn('haproxy', ['-db', '-f', cfg], { logName: 'haproxy' });
    const proc = this.proc;
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`haproxy exited:\n${proc.tail(20)}`);
        return this.states().catch(() => null);
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'haproxy stats socket' },
    );
    await Promise.all(this.backends.map((b) => this.waitServer(b.name, 'UP')));
  }

  async stop(): Promise<void> {
    await this.proc?.stop(5_000);
  }

  /** A stats-socket command's answer. */
  command(cmd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect(this.statsSocket);
      let out = '';
      s.setTimeout(5_000, () => s.destroy(new Error(`haproxy: no answer to ${cmd}`)));
      s.on('connect', () => s.end(`${cmd}\n`));
      s.on('data', (d) => {
        out += d.toString('utf8');
      });
      s.on('error', reject);
      s.on('close', () => resolve(out));
    });
  }

  /** Each instance's state as HAProxy sees it ("UP", "DOWN", "UP 1/2", …). */
  async states(): Promise<Record<string, string>> {
    const csv = await this.command('show stat');
    const lines = csv.split('\n').filter((l) => l.length > 0);
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const [px, sv, st] = ['pxname', 'svname', 'status'].map((h) => header.indexOf(h));
    if (px === undefined || px < 0 || sv! < 0 || st! < 0) throw new Error(`haproxy show stat: ${csv}`);
    const out: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (f[px] === 'brokers' && f[sv!] !== 'BACKEND') out[f[sv!]!] = f[st!]!;
    }
    return out;
  }

  /** Waits until HAProxy's health checks have this instance in `state` (UP, DOWN). */
  async waitServer(name: string, state: 'UP' | 'DOWN', timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await this.states())[name] === state, {
      timeoutMs,
      intervalMs: 100,
      what: `haproxy: ${name} ${state}`,
    });
  }

  /** Closes every client session on this instance (as `on-marked-down shutdown-sessions` does). */
  async shutdownSessions(name: string): Promise<void> {
    const out = await this.command(`shutdown sessions server brokers/${name}`);
    if (out.trim() !== '') throw new Error(`haproxy shutdown sessions ${name}: ${out.trim()}`);
  }

  logLines(): readonly string[] {
    return this.proc?.lines ?? [];
  }
}
