import { createServer, type Server } from 'node:https';
import { type AddressInfo, connect, createServer as createTcpServer, type LookupFunction } from 'node:net';
import {
  brokerTlsConnect,
  CertificatePinError,
  ConnectTimeoutError,
  createSelfSigned,
  fingerprintOf,
  fixedLookup,
  limitConnectTime,
  pinnedTlsConnect,
} from '@trellis/tls';
import { httpsGet } from './helpers/https-get';

describe('connecting to a broker instance', () => {
  let server: Server;
  let port: number;
  let fingerprint: string;
  let certPem: string;
  const seen: Array<{ url: string; host: string | undefined; sni: string | false }> = [];

  beforeAll(async () => {
    const pair = await createSelfSigned('broker-1', ['brokers.test', '127.0.0.1']);
    certPem = pair.certPem;
    fingerprint = fingerprintOf(pair.certPem);
    server = createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
      const sni = (req.socket as unknown as { servername: string | false }).servername;
      seen.push({ url: req.url ?? '', host: req.headers.host, sni });
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  const get = (url: string, connectFn: unknown, lookup?: LookupFunction) =>
    httpsGet(url, { createConnection: connectFn as never, ...(lookup ? { lookup } : {}) });

  it('reaches the address a name was resolved to, keeping the name for SNI and Host', async () => {
    const body = await get(
      `https://brokers.test:${port}/by-name`,
      brokerTlsConnect({ fingerprints: [fingerprint] }),
      fixedLookup('127.0.0.1'),
    );
    expect(body).toBe('ok');
    expect(seen.at(-1)).toEqual({ url: '/by-name', host: `brokers.test:${port}`, sni: 'brokers.test' });
  });

  it('verifies the host name against the CA when not pinned', async () => {
    const ca = [Buffer.from(certPem)];
    expect(
      await get(`https://brokers.test:${port}/ca`, brokerTlsConnect({ ca }), fixedLookup('127.0.0.1')),
    ).toBe('ok');
    await expect(
      get(`https://other.test:${port}/ca-wrong-name`, brokerTlsConnect({ ca }), fixedLookup('127.0.0.1')),
    ).rejects.toThrow(/other\.test/);
    expect(seen.map((s) => s.url)).not.toContain('/ca-wrong-name');
  });

  it('accepts any of several pins, and names them all when none matches', async () => {
    const other = canonical('AB');
    expect(await get(`https://127.0.0.1:${port}/two-pins`, pinnedTlsConnect([other, fingerprint]))).toBe(
      'ok',
    );
    const err = await get(
      `https://127.0.0.1:${port}/no-pin`,
      pinnedTlsConnect([other, canonical('CD')]),
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(CertificatePinError);
    expect((err as CertificatePinError).expected).toBe(`${other} or ${canonical('CD')}`);
    expect(seen.map((s) => s.url)).not.toContain('/no-pin');
  });

  it('answers both lookup shapes (one address, or all of them)', () => {
    const lookup = fixedLookup('2001:db8::7');
    const one = jest.fn();
    const all = jest.fn();
    lookup('x.test', {}, one);
    lookup('x.test', { all: true }, all);
    expect(one).toHaveBeenCalledWith(null, '2001:db8::7', 6);
    expect(all).toHaveBeenCalledWith(null, [{ address: '2001:db8::7', family: 6 }]);
  });
});

describe('limitConnectTime', () => {
  afterEach(() => jest.useRealTimers());

  it('destroys a socket still connecting when the time is up (ETIMEDOUT), and leaves a connected one', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    // A lookup that never answers keeps the socket connecting, as an unanswered SYN would.
    const stuck = connect({ host: 'never.test', port: 9, lookup: () => undefined });
    const failed = new Promise<Error>((resolve) => stuck.once('error', resolve));
    limitConnectTime(stuck, 1_500);
    jest.advanceTimersByTime(1_499);
    expect(stuck.destroyed).toBe(false);
    jest.advanceTimersByTime(1);
    const err = await failed;
    expect(err).toBeInstanceOf(ConnectTimeoutError);
    expect((err as ConnectTimeoutError).code).toBe('ETIMEDOUT');
    expect(stuck.destroyed).toBe(true);

    jest.useRealTimers();
    const listener = createTcpServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
      const ok = connect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port });
      limitConnectTime(ok, 1_500);
      await new Promise((resolve) => ok.once('connect', resolve));
      jest.advanceTimersByTime(5_000);
      expect(ok.destroyed).toBe(false);
      ok.destroy();
    } finally {
      jest.useRealTimers();
      await new Promise((resolve) => listener.close(resolve));
    }
  });
});

function canonical(byte: string): string {
  return Array(32).fill(byte).join(':');
}
