import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { loadOrCreateTls } from '@trellis/tls';
import { MAX_PROXY_V2_PAYLOAD, parseProxyV2, proxyProtocolListener } from '../../src/http/proxy-protocol';
import { proxyV2Header } from '../support/proxy-front';

// Bytes HAProxy 2.6 sent (`server ... send-proxy-v2 check check-send-proxy`), then the client's "hello".
const HAPROXY_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');
const HAPROXY_V4 = Buffer.from('0d0a0d0a000d0a515549540a2111000c7f0000017f000001895c480968656c6c6f', 'hex');
const HAPROXY_V6 = Buffer.from(
  '0d0a0d0a000d0a515549540a2121002400000000000000000000000000000001000000000000000000000000000000018f54480a68656c6c6f',
  'hex',
);

describe('parseProxyV2 on HAProxy bytes', () => {
  it('reads the source of an IPv4 and an IPv6 connection and where the payload starts', () => {
    const v4 = parseProxyV2(HAPROXY_V4);
    expect(v4).toEqual({
      kind: 'header',
      length: 28,
      source: { address: '127.0.0.1', family: 'IPv4', port: 35164 },
    });
    expect(HAPROXY_V4.subarray(28).toString()).toBe('hello');
    const v6 = parseProxyV2(HAPROXY_V6);
    expect(v6).toEqual({
      kind: 'header',
      length: 52,
      source: { address: '::1', family: 'IPv6', port: 36692 },
    });
  });

  it('reports an IPv4-mapped IPv6 source as Node does, and takes TLVs after the addresses', () => {
    const mapped = Buffer.from(HAPROXY_V6);
    mapped.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 7], 16);
    expect(parseProxyV2(mapped)).toMatchObject({ source: { address: '::ffff:203.0.113.7', family: 'IPv6' } });
    // An authority TLV (type 0x02) of 255 bytes after the IPv4 block, as HAProxy's proxy-v2-options send.
    const tlv = Buffer.concat([Buffer.from([0x02, 0x00, 0xff]), Buffer.alloc(255, 0x61)]);
    const withTlv = Buffer.concat([HAPROXY_V4.subarray(0, 28), tlv, Buffer.from('hello')]);
    withTlv.writeUInt16BE(12 + tlv.length, 14);
    expect(parseProxyV2(withTlv)).toMatchObject({ kind: 'header', length: 28 + tlv.length });
    expect(withTlv.subarray(28 + tlv.length).toString()).toBe('hello');
  });

  it('takes LOCAL (health checks) as no source', () => {
    expect(parseProxyV2(HAPROXY_LOCAL)).toEqual({ kind: 'header', length: 16, source: null });
  });

  it('waits for the rest of a split header, at every split point', () => {
    for (let n = 0; n < 28; n++) expect(parseProxyV2(HAPROXY_V4.subarray(0, n)).kind).toBe('incomplete');
  });

  it('rejects junk, v1 text, other versions, datagrams and oversize lengths', () => {
    expect(parseProxyV2(Buffer.from('GET / HTTP/1.1\r\n')).kind).toBe('invalid');
    expect(parseProxyV2(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')).kind).toBe('invalid');
    expect(parseProxyV2(Buffer.from([0x16, 3, 1])).kind).toBe('invalid'); // a TLS ClientHello
    const v1 = Buffer.from(HAPROXY_V4);
    v1[12] = 0x11;
    expect(parseProxyV2(v1)).toEqual({ kind: 'invalid', reason: 'not version 2' });
    const dgram = Buffer.from(HAPROXY_V4);
    dgram[13] = 0x12;
    expect(parseProxyV2(dgram).kind).toBe('invalid');
    const long = Buffer.from(HAPROXY_LOCAL);
    long.writeUInt16BE(MAX_PROXY_V2_PAYLOAD + 1, 14);
    expect(parseProxyV2(long)).toEqual({ kind: 'invalid', reason: 'header too long' });
    const short = Buffer.from(HAPROXY_V4.subarray(0, 24));
    short.writeUInt16BE(8, 14);
    expect(parseProxyV2(short).kind).toBe('invalid');
  });

  it('survives random bytes after a valid signature without throwing', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed & 0xff;
    };
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.concat([
        HAPROXY_LOCAL.subarray(0, 12),
        Buffer.from(Array.from({ length: 4 + (i % 60) }, rnd)),
      ]);
      expect(['incomplete', 'invalid', 'header']).toContain(parseProxyV2(b).kind);
    }
  });
});

describe('proxyProtocolListener', () => {
  const open: Server[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await new Promise((r) => s.close(r));
  });

  async function front(target: Server, rejected: string[] = [], timeoutMs = 2000): Promise<number> {
    const f = proxyProtocolListener(target, { timeoutMs, onRejected: (reason) => rejected.push(reason) });
    open.push(f);
    await new Promise<void>((r) => f.listen(0, '127.0.0.1', r));
    return (f.address() as { port: number }).port;
  }

  function echoAddress(): HttpServer {
    return createHttpServer((req, res) => res.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`));
  }

  function exchange(port: number, bytes: Buffer): Promise<string> {
    return new Promise((resolve) => {
      const c: Socket = connect(port, '127.0.0.1', () => c.write(bytes));
      let got = '';
      c.on('data', (d) => {
        got += d;
      });
      c.on('error', () => {});
      c.on('close', () => resolve(got));
    });
  }

  const get = Buffer.from('GET / HTTP/1.0\r\n\r\n');

  it('gives HTTP the header source as the remote address, the request in the same segment', async () => {
    const port = await front(echoAddress());
    const reply = await exchange(port, Buffer.concat([proxyV2Header('203.0.113.7', 40001), get]));
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply.endsWith('203.0.113.7:40001')).toBe(true);
  });

  it("keeps HTTP's stalled-request timeout (the server itself never listens)", async () => {
    const server = createHttpServer({
      connectionsCheckingInterval: 20,
      headersTimeout: 50,
      requestTimeout: 50,
    });
    const port = await front(server);
    const partial = Buffer.concat([proxyV2Header('203.0.113.7', 40001), Buffer.from('GET / HTTP/1.1\r\n')]);
    expect(await exchange(port, partial)).toMatch(/^HTTP\/1\.1 408/);
  });

  it('keeps the proxy address for LOCAL', async () => {
    const port = await front(echoAddress());
    const reply = await exchange(port, Buffer.concat([HAPROXY_LOCAL, get]));
    expect(reply).toMatch(/127\.0\.0\.1:\d+$/);
  });

  it('closes a connection without a header, and one that sends nothing, and counts both', async () => {
    const rejected: string[] = [];
    const port = await front(echoAddress(), rejected, 200);
    expect(await exchange(port, get)).toBe('');
    expect(await exchange(port, Buffer.alloc(0))).toBe('');
    expect(rejected).toEqual(['no PROXY v2 signature', 'timeout']);
  });

  it('closes a header that trickles in past its deadline, however often a byte comes', async () => {
    const rejected: string[] = [];
    const port = await front(echoAddress(), rejected, 300);
    const header = proxyV2Header('203.0.113.7', 40001);
    const c = connect(port, '127.0.0.1');
    c.on('error', () => {});
    let sent = 0;
    // One byte every 50 ms: an idle timer of 300 ms would never fire; the header needs 1.4 s.
    const tick = setInterval(() => {
      if (sent < header.length && !c.destroyed) c.write(header.subarray(sent, ++sent));
    }, 50);
    await new Promise((r) => c.once('close', r));
    clearInterval(tick);
    expect(sent).toBeLessThan(header.length);
    expect(rejected).toEqual(['timeout']);
  });

  it('closes new connections at once while too many wait for their header', async () => {
    const rejected: string[] = [];
    const f = proxyProtocolListener(echoAddress(), {
      timeoutMs: 10_000,
      maxAwaiting: 2,
      onRejected: (reason) => rejected.push(reason),
    });
    open.push(f);
    await new Promise<void>((r) => f.listen(0, '127.0.0.1', r));
    const port = (f.address() as { port: number }).port;
    const waiting = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    await Promise.all(waiting.map((w) => new Promise((r) => w.once('connect', r))));
    // The third is refused while two owe their header; once they send it, a new one is served.
    expect(await exchange(port, get)).toBe('');
    expect(rejected).toEqual(['too many connections waiting for a header']);
    for (const w of waiting) w.destroy();
    // The server learns of those closes when it learns: ask again until it has (bounded).
    let reply = '';
    for (let i = 0; i < 200 && !reply.endsWith('203.0.113.7:40001'); i++) {
      if (i > 0) await new Promise<void>((r) => setTimeout(r, 25));
      reply = await exchange(port, Buffer.concat([proxyV2Header('203.0.113.7', 40001), get]));
    }
    expect(reply.endsWith('203.0.113.7:40001')).toBe(true);
  });

  it('gives a TLS server the source on the TLS socket too', async () => {
    const tls = await loadOrCreateTls({ dataDir: mkdtempSync(join(tmpdir(), 'pp-')), sans: ['127.0.0.1'] });
    const server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) =>
      res.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`),
    );
    const seen: string[] = [];
    server.on('connection', (s: Socket) => seen.push(`${s.remoteAddress}`));
    const port = await front(server);
    const raw = connect(port, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    raw.write(proxyV2Header('198.51.100.9', 5555));
    const body = await new Promise<string>((resolve, reject) => {
      const t = tlsConnect({
        socket: raw,
        ca: readFileSync(tls.certFile),
        servername: 'localhost',
        checkServerIdentity: () => undefined,
      });
      t.on('secureConnect', () => t.write('GET / HTTP/1.0\r\n\r\n'));
      let got = '';
      t.on('data', (d) => {
        got += d;
      });
      t.on('error', reject);
      t.on('close', () => resolve(got));
    });
    expect(seen).toEqual(['198.51.100.9']);
    expect(body.endsWith('198.51.100.9:5555')).toBe(true);
  });
});
