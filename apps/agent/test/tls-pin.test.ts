import type { Agent } from 'node:https';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateKeyPair } from '@trellis/crypto';
import { PROTOCOL_VERSION } from '@trellis/proto';
import { enroll } from '../src/control/enroll-client';
import { createBrokerAgent, normalizeFingerprint, TlsPinMismatchError } from '../src/trust/broker-trust';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

describe('broker TLS trust', () => {
  const cert = makeSelfSignedCert();
  const other = makeSelfSignedCert('someone-else');
  let server: Server;
  let port: number;
  /** Bytes of request data the server received (to prove none arrive on a pin mismatch). */
  let requests = 0;

  beforeAll(async () => {
    server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      requests++;
      res.end(JSON.stringify({ hello: req.url }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  function get(agent: Agent): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(`https://127.0.0.1:${port}/probe`, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          body += c.toString();
        });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('connects when the pinned fingerprint matches (colon and plain hex alike)', async () => {
    expect(await get(createBrokerAgent({ fingerprint: cert.fingerprint }))).toContain('/probe');
    const plain = cert.fingerprint.replace(/:/g, '').toLowerCase();
    expect(await get(createBrokerAgent({ fingerprint: plain }))).toContain('/probe');
  });

  it('refuses a wrong pin with a clear error and sends no request byte', async () => {
    const before = requests;
    const err = await get(createBrokerAgent({ fingerprint: other.fingerprint })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TlsPinMismatchError);
    expect((err as Error).message).toContain(
      `has SHA-256 fingerprint ${normalizeFingerprint(cert.fingerprint)}`,
    );
    expect((err as Error).message).toContain(`pins ${normalizeFingerprint(other.fingerprint)}`);
    expect(requests).toBe(before);
  });

  it('verifies normally with a CA file, and refuses a self-signed cert without one', async () => {
    expect(await get(createBrokerAgent({ caFile: cert.certFile }))).toContain('/probe');
    await expect(get(createBrokerAgent({ caFile: other.certFile }))).rejects.toThrow(
      /self[- ]signed|verify/i,
    );
    await expect(get(createBrokerAgent({}))).rejects.toThrow(/self[- ]signed|verify/i);
  });

  it('rejects both trust options at once and a malformed fingerprint', () => {
    expect(() => createBrokerAgent({ caFile: cert.certFile, fingerprint: cert.fingerprint })).toThrow(
      /either/,
    );
    expect(() => normalizeFingerprint('abc')).toThrow(/not a SHA-256/);
  });

  it('enrollment through a wrong pin fails before the setup key is sent', async () => {
    const before = requests;
    const err = await enroll(
      `https://127.0.0.1:${port}`,
      createBrokerAgent({ fingerprint: other.fingerprint }),
      {
        protocolVersion: PROTOCOL_VERSION,
        setupKey: 'secret-setup-key',
        publicKey: generateKeyPair().publicKey,
        hostname: 'h',
        os: 'linux',
      },
      generateKeyPair().privateKey,
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(TlsPinMismatchError);
    expect(requests).toBe(before);
  });
});
