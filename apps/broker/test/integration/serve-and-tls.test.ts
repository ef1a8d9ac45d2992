import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_PATHS } from '@trellis/proto';
import { createSelfSigned, fingerprintOf } from '@trellis/tls';
import { parseListen, serve } from '../../src/cli/serve';
import { BACKENDS, type Backend, createBackend, tempDir } from '../support/backends';
import { startTestBroker } from '../support/fixture';
import { httpClient } from '../support/http-client';

jest.setTimeout(60_000);

describe('--listen parsing', () => {
  it.each([
    ['0.0.0.0:8443', { host: '0.0.0.0', port: 8443 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    [':8443', { host: '0.0.0.0', port: 8443 }],
  ])('%s', (text, expected) => {
    expect(parseListen(text)).toEqual(expected);
  });
  it.each(['8443', 'host', 'a:b', '1.2.3.4:70000'])('rejects %s', (text) => {
    expect(() => parseListen(text)).toThrow(/--listen/);
  });
});

describe.each(BACKENDS)('serve and TLS on %s', (kind) => {
  let backend: Backend;
  const saved = process.env.DATABASE_URL;
  beforeEach(async () => {
    backend = await createBackend(kind);
    if (backend.databaseUrl) process.env.DATABASE_URL = backend.databaseUrl;
    else delete process.env.DATABASE_URL;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
    await backend.dispose();
  });

  it('prints the URL, fingerprint, certificate path, bootstrap credentials once, and the ready line', async () => {
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
    const flags = {
      dataDir: backend.dataDir,
      listen: '127.0.0.1:0',
      tlsSan: ['broker.lab.test'],
      zone: 'trellis.internal',
      logLevel: 'silent',
      dnsListen: '127.0.0.1:0',
      dnsTtl: 30,
      dnsNs: [],
      dnsRateLimit: 100,
    };
    const broker = await serve(flags, io);
    try {
      const text = lines.join('\n');
      expect(lines).toContain(`trellis-broker ready ${broker.url}`);
      expect(text).toContain(`fingerprint: sha256 ${broker.fingerprint}`);
      expect(text).toContain(`dns: trellis.internal on udp and tcp port ${broker.dnsPort}`);
      expect(broker.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(text).toContain(`certificate: ${join(backend.dataDir, 'tls', 'cert.pem')}`);
      expect(text).toMatch(/owner email: +admin@trellis\.local/);
      const password = /owner password: (\S+)/.exec(text)![1]!;
      const setupKey = /setup key: +(tskey_\S+)/.exec(text)![1]!;
      const api = httpClient(broker.url, broker.certFile);
      const login = await api('POST', API_PATHS.login, { body: { email: 'admin@trellis.local', password } });
      expect(login.status).toBe(200);
      const keys = await api('GET', API_PATHS.setupKeys, { token: login.json.token });
      expect(keys.json[0]).toMatchObject({ reusable: true, valid: true, prefix: setupKey.slice(0, 12) });
      // The same credentials in a file only root reads, and never in the log stream.
      const file = join(backend.dataDir, 'first-start-credentials.txt');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, 'utf8')).toContain(`owner password: ${password}`);
      expect(text).toContain(`(also in ${file}, mode 0600`);
    } finally {
      await broker.close();
    }
    const again: string[] = [];
    const second = await serve(flags, { out: (s) => again.push(s), err: (s) => again.push(s) });
    await second.close();
    expect(again.join('\n')).not.toMatch(/password/);
  });

  it('uses --tls-cert/--tls-key instead of generating a certificate', async () => {
    const dir = tempDir();
    const pair = await createSelfSigned('custom', ['127.0.0.1', 'localhost']);
    writeFileSync(join(dir, 'c.pem'), pair.certPem);
    writeFileSync(join(dir, 'k.pem'), pair.keyPem);
    const t = await startTestBroker(backend, {
      tlsCertFile: join(dir, 'c.pem'),
      tlsKeyFile: join(dir, 'k.pem'),
    });
    try {
      expect(t.broker.fingerprint).toBe(fingerprintOf(pair.certPem));
      expect(existsSync(join(backend.dataDir, 'tls'))).toBe(false);
      expect((await t.api('GET', API_PATHS.health)).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
