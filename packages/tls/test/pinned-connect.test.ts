import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  CertificatePinError,
  canonicalFingerprint,
  createSelfSigned,
  fingerprintOf,
  pinnedTlsConnect,
} from '@trellis/tls';
import { httpsGet } from './helpers/https-get';

describe('pinnedTlsConnect', () => {
  let server: Server;
  let port: number;
  let fingerprint: string;
  const requests: string[] = [];

  beforeAll(async () => {
    const pair = await createSelfSigned('pin-test', ['127.0.0.1']);
    fingerprint = fingerprintOf(pair.certPem);
    server = createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
      requests.push(req.url ?? '');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const get = (pin: string, path: string) =>
    httpsGet(null, { host: '127.0.0.1', port, path, createConnection: pinnedTlsConnect(pin) as never });

  it('talks to the server whose certificate matches the pin', async () => {
    expect(await get(fingerprint.replaceAll(':', '').toLowerCase(), '/right')).toBe('ok');
    expect(requests).toContain('/right');
  });

  it('refuses another certificate before sending a byte of the request', async () => {
    const wrong = canonicalFingerprint('AB'.repeat(32));
    await expect(get(wrong, '/wrong')).rejects.toBeInstanceOf(CertificatePinError);
    expect(requests).not.toContain('/wrong');
  });

  it('accepts only SHA-256 fingerprints', () => {
    expect(canonicalFingerprint(` ${'ab'.repeat(32)} `)).toBe(Array(32).fill('AB').join(':'));
    expect(() => canonicalFingerprint('AB:CD')).toThrow(/fingerprint/);
  });
});
