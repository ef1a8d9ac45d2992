import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { loadOrCreateTls } from '@trellis/tls';

/** `--proxy haproxy`: TLS ends at HAProxy, which passes plain HTTP with a PROXY v2 header on. */
export interface HaproxyFront {
  port: number;
  certPem: string;
  /** HAProxy's resident memory now, bytes (all its threads are one process). */
  rss(): number;
  stop(): void;
}

const MAXCONN = 9000;

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/**
 * Starts HAProxy on `port` (chosen beforehand: the broker's public URL names it) in front of the
 * broker's plain listener, as infra/haproxy/haproxy.cfg does (http mode, TLS at the bind,
 * `send-proxy-v2`, health checks with `check-send-proxy`).
 */
export async function startHaproxy(dir: string, port: number, brokerPort: number): Promise<HaproxyFront> {
  const tls = await loadOrCreateTls({ dataDir: dir, sans: ['127.0.0.1'] });
  const pem = join(dir, 'haproxy.pem');
  writeFileSync(pem, `${tls.cert}\n${tls.key}\n`);
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      // Two descriptors a connection, within the hard limit scripts/bench.mjs raises to (20000 here).
      `  maxconn ${MAXCONN}`,
      // As infra/haproxy/haproxy.cfg: no session cache (4.7 MB allocated up front); tickets resume.
      '  tune.ssl.cachesize 0',
      'defaults',
      '  mode http',
      '  timeout connect 5s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  timeout http-request 10s',
      '  timeout tunnel 1h',
      // As infra/haproxy/haproxy.cfg: a broker busy with a storm answers /healthz late, not never.
      '  timeout check 5s',
      'frontend https',
      `  bind 127.0.0.1:${port} ssl crt ${pem} alpn http/1.1`,
      `  maxconn ${MAXCONN}`,
      '  default_backend broker',
      'backend broker',
      '  option httpchk GET /healthz',
      `  server b1 127.0.0.1:${brokerPort} send-proxy-v2 check check-send-proxy inter 2s fall 5 maxconn ${MAXCONN}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('haproxy', ['-f', cfg, '-db'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`haproxy exited (${code}); its stderr is above`)));
    const tryConnect = (left: number) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve();
      });
      s.on('error', () =>
        left > 0 ? setTimeout(() => tryConnect(left - 1), 100) : reject(new Error('haproxy never listened')),
      );
    };
    tryConnect(100);
  });
  const pid = child.pid!;
  return {
    port,
    certPem: readFileSync(tls.certFile, 'utf8'),
    rss: () => {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    },
    stop: () => child.kill('SIGKILL'),
  };
}
