import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { loadOrCreateTls } from '@trellis/tls';
import { tempDir } from './backends';

/** A PROXY v2 header for a TCP/IPv4 connection from `ip:port` (as HAProxy's send-proxy-v2 writes it). */
export function proxyV2Header(ip: string, port: number): Buffer {
  const b = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(b);
  b[12] = 0x21; // version 2, PROXY
  b[13] = 0x11; // AF_INET, STREAM
  b.writeUInt16BE(12, 14);
  b.set(ip.split('.').map(Number), 16);
  b.set([127, 0, 0, 1], 20);
  b.writeUInt16BE(port, 24);
  b.writeUInt16BE(443, 26);
  return b;
}

/**
 * A TCP proxy (what a load balancer with the PROXY protocol does) that passes each connection
 * through to `targetPort` after a header claiming it came from `sourceIp` (its own port).
 */
export async function headerPipe(
  targetPort: number,
  sourceIp: string,
): Promise<{ port: number; close(): void }> {
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    upstream.write(proxyV2Header(sourceIp, client.remotePort ?? 1));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

export const haproxyInstalled = (): boolean => spawnSync('haproxy', ['-v']).status === 0;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return port;
}

export interface HaproxyFront {
  url: string;
  /** HAProxy's certificate (what devices trust). */
  certFile: string;
  close(): void;
}

/**
 * HAProxy terminating TLS on 127.0.0.1 and passing requests on in plain HTTP with send-proxy-v2 to
 * the broker, from source address `source` (so the broker can tell the proxy from the client), with
 * health checks that send PROXY LOCAL. Resolves once a request through it reaches the broker.
 */
export async function startHaproxy(brokerPort: number, source = '127.0.0.3'): Promise<HaproxyFront> {
  const dir = tempDir('haproxy-');
  const tls = await loadOrCreateTls({ dataDir: dir, sans: ['127.0.0.1'] });
  writeFileSync(join(dir, 'front.pem'), `${tls.cert}\n${tls.key}\n`);
  const port = await freePort();
  const cfg = [
    'global',
    '  log stdout format raw local0',
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout tunnel 1h',
    'frontend https',
    `  bind 127.0.0.1:${port} ssl crt ${join(dir, 'front.pem')}`,
    '  default_backend brokers',
    'backend brokers',
    '  option httpchk GET /healthz',
    `  server b1 127.0.0.1:${brokerPort} send-proxy-v2 check check-send-proxy inter 200ms source ${source}`,
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), `${cfg}\n`);
  const child: ChildProcess = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db'], { stdio: 'ignore' });
  const url = `https://127.0.0.1:${port}`;
  const ca = readFileSync(tls.certFile);
  for (let i = 0; ; i++) {
    const status = await new Promise<number>((resolve) => {
      const req = request(`${url}/healthz`, { ca, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.end();
    });
    if (status === 200) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill();
      throw new Error(`HAProxy in front of the broker never answered (last status ${status})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, certFile: tls.certFile, close: () => child.kill() };
}
