import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { API_PATHS, type AuditEventInfo, AuditPage } from '@trellis/proto';
import { createSelfSigned, fingerprintOf } from '@trellis/tls';
import { type BrokerHandle, type BrokerOptions, startBroker } from '../../src';
import { createLogger } from '../../src/logger';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { cli } from '../support/cli';
import { LogSink } from '../support/fixture';
import { httpClient } from '../support/http-client';
import { haproxyInstalled, headerPipe, proxyV2Header, startHaproxy } from '../support/proxy-front';
import { TestDevice } from '../support/test-device';

jest.setTimeout(120_000);

async function start(backend: Backend, logs: LogSink, extra: Partial<BrokerOptions>): Promise<BrokerHandle> {
  return startBroker({
    dataDir: backend.dataDir,
    host: '127.0.0.1',
    port: 0,
    logger: createLogger('info', logs),
    coalesceMs: 10,
    offlineGraceMs: 0,
    dashboardDir: null,
    reflectorPort: false,
    proxyProtocol: true,
    ...extra,
  });
}

async function signIn(api: ReturnType<typeof httpClient>, broker: BrokerHandle): Promise<string> {
  const boot = broker.bootstrap!;
  const res = await api('POST', API_PATHS.login, {
    body: { email: boot.ownerEmail, password: boot.ownerPassword },
  });
  expect(res.status).toBe(200);
  return res.json.token as string;
}

async function events(api: ReturnType<typeof httpClient>, token: string): Promise<AuditEventInfo[]> {
  const res = await api('GET', `${API_PATHS.audit}?limit=100`, { token });
  expect(res.status).toBe(200);
  return AuditPage.parse(res.json).events;
}

const proxyHeaderErrors = async (broker: BrokerHandle) =>
  (await broker.metrics.errors.get()).values.find((v) => v.labels.kind === 'proxy_header')?.value ?? 0;

/** Resolves with what the broker sent before closing a connection that wrote `bytes`. */
function rawExchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => c.write(bytes));
    let got = '';
    c.on('data', (d) => {
      got += d;
    });
    c.on('error', () => {});
    c.on('close', () => resolve(got));
  });
}

describe('--proxy-protocol, TLS at the broker (a TCP load balancer in front)', () => {
  let backend: Backend;
  let broker: BrokerHandle;
  let pipe: { port: number; close(): void };
  const logs = new LogSink();
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend('pglite');
    broker = await start(backend, logs, { maxConnectionsPerAddress: 4 });
    pipe = await headerPipe(broker.port, '203.0.113.7');
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    pipe?.close();
    await broker?.close();
    await backend?.dispose();
  });

  it("uses the header's source: audit log, the observed candidate", async () => {
    const url = `https://127.0.0.1:${pipe.port}`;
    const api = httpClient(url, broker.certFile);
    const token = await signIn(api, broker);
    const a = new TestDevice(url, broker.certFile);
    const b = new TestDevice(url, broker.certFile);
    devices.push(a, b);
    await a.enroll(broker.bootstrap!.setupKey, { hostname: 'alpha' });
    await b.enroll(broker.bootstrap!.setupKey, { hostname: 'beta' });
    await a.connect();
    await b.connect();
    b.send({ type: 'endpoints', endpoints: ['192.168.1.5:51820'] });
    await a.waitForPeers((p) => (p.get(b.id)?.endpoints ?? []).includes('203.0.113.7:51820'));
    const seen = await events(api, token);
    const signedIn = seen.find((e) => e.action === 'user.signed-in');
    expect(signedIn?.actor.address).toBe('203.0.113.7');
    const enrolled = seen.filter((e) => e.action === 'device.enrolled');
    expect(enrolled.map((e) => e.actor.address)).toEqual(['203.0.113.7', '203.0.113.7']);
  });

  it("caps connections per client address (the header's), not per proxy", async () => {
    const before = (await broker.metrics.errors.get()).values.find((v) => v.labels.kind === 'connection_cap');
    // The two devices above hold two of 203.0.113.7's four; three more from it: one is refused.
    const from = (ip: string) => Buffer.concat([proxyV2Header(ip, 40000), Buffer.from([0x16, 3, 1])]);
    const held = [0, 1].map(() => connect(broker.port, '127.0.0.1'));
    for (const s of held) {
      s.on('error', () => {});
      s.write(from('203.0.113.7'));
    }
    // Let the broker take both in before the one over the cap (nothing to wait on but time).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await rawExchange(broker.port, from('203.0.113.7').subarray(0, 28))).toBe('');
    const after = (await broker.metrics.errors.get()).values.find((v) => v.labels.kind === 'connection_cap');
    expect((after?.value ?? 0) - (before?.value ?? 0)).toBe(1);
    for (const s of held) s.destroy();
  });

  it('closes a connection without a header (and never reads it as a request), counting it', async () => {
    const before = await proxyHeaderErrors(broker);
    expect(await rawExchange(broker.port, Buffer.from('GET /healthz HTTP/1.0\r\n\r\n'))).toBe('');
    expect(await rawExchange(broker.port, Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'))).toBe('');
    expect((await proxyHeaderErrors(broker)) - before).toBe(2);
    expect(logs.lines.some((l) => l.msg === 'connection closed: no valid PROXY protocol header')).toBe(true);
  });
});

describe('--plain-http', () => {
  it("refuses to start without --proxy-protocol, or without the proxy's https --public-url", async () => {
    const backend = await createBackend('pglite');
    const logs = new LogSink();
    await expect(start(backend, logs, { proxyProtocol: false, plainHttp: true })).rejects.toThrow(
      '--plain-http needs --proxy-protocol',
    );
    await expect(start(backend, logs, { plainHttp: true })).rejects.toThrow(
      '--plain-http needs --public-url',
    );
    await backend.dispose();
  });

  it("shows devices and relays the proxy's certificate (--tls-cert), none without it", async () => {
    const backend = await createBackend('pglite');
    const pair = await createSelfSigned('proxy.example', ['proxy.example']);
    const certFile = join(tempDir(), 'proxy.crt');
    writeFileSync(certFile, pair.certPem);
    const publicUrl = 'https://proxy.example';
    const broker = await start(backend, new LogSink(), { plainHttp: true, publicUrl, tlsCertFile: certFile });
    expect(broker.tls).toBe(false);
    expect(broker.fingerprint).toBe(fingerprintOf(pair.certPem));
    await broker.close();
    const bare = await start(backend, new LogSink(), { plainHttp: true, publicUrl });
    expect(bare.fingerprint).toBe('');
    await bare.close();
    await backend.dispose();
  });

  it('is refused by `trellis-broker serve` without --proxy-protocol, with the reason', async () => {
    const dir = tempDir();
    const run = await cli(['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--plain-http']);
    expect(run.code).not.toBe(0);
    expect(run.err).toContain('--plain-http needs --proxy-protocol');
  });
});

const withHaproxy = haproxyInstalled() ? describe : describe.skip;
if (!haproxyInstalled())
  console.warn('haproxy not installed (scripts/lib.sh installs it): HAProxy tests skipped');

withHaproxy('--plain-http --proxy-protocol behind a real HAProxy (TLS at HAProxy, send-proxy-v2)', () => {
  let backend: Backend;
  let broker: BrokerHandle;
  let front: Awaited<ReturnType<typeof startHaproxy>>;
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    backend = await createBackend('pglite');
    // The public URL is set once HAProxy's port is known: a placeholder first, for the start.
    broker = await start(backend, new LogSink(), { plainHttp: true, publicUrl: 'https://127.0.0.1:1' });
    front = await startHaproxy(broker.port, '127.0.0.3');
  });
  afterAll(async () => {
    for (const d of devices) d.close();
    front?.close();
    await broker?.close();
    await backend?.dispose();
  });

  it("serves devices through it and records the client's address, not HAProxy's", async () => {
    expect(broker.tls).toBe(false);
    const api = httpClient(front.url, front.certFile);
    const token = await signIn(api, broker);
    const d = new TestDevice(front.url, front.certFile);
    devices.push(d);
    await d.enroll(broker.bootstrap!.setupKey, { hostname: 'gamma' });
    const netmap = await d.connect(); // the control WebSocket through HAProxy
    expect(netmap.type).toBe('netmap');
    const seen = await events(api, token);
    const addresses = seen.map((e) => e.actor.address).filter((a) => a !== null);
    expect(addresses.length).toBeGreaterThanOrEqual(2);
    expect(new Set(addresses)).toEqual(new Set(['127.0.0.1'])); // HAProxy connects from 127.0.0.3
    // HAProxy's health checks (PROXY LOCAL) every 200 ms were all accepted.
    expect(await proxyHeaderErrors(broker)).toBe(0);
    // Secure cookies even though the broker itself speaks plain HTTP.
    const login = await api('POST', API_PATHS.session, {
      body: { email: broker.bootstrap!.ownerEmail, password: broker.bootstrap!.ownerPassword },
    });
    expect(String(login.headers['set-cookie'] ?? '')).toMatch(/; Secure/);
  });
});
