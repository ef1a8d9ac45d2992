import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpRequest, MAX_HTTP_BODY } from '../src/upnp/http-fetch';

// The gateway's HTTP answers are capped and time-limited; a hostile one yields undefined, not a throw.

describe('httpRequest', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/ok') return res.end('<root/>');
      if (req.url === '/declared-huge') {
        res.writeHead(200, { 'Content-Length': String(MAX_HTTP_BODY + 1) });
        return res.end();
      }
      if (req.url === '/streamed-huge') {
        res.writeHead(200);
        return res.end(Buffer.alloc(MAX_HTTP_BODY + 1, 0x61));
      }
      if (req.url === '/echo') {
        let body = '';
        req.on('data', (c: Buffer) => {
          body += c.toString();
        });
        return req.on('end', () => res.writeHead(500).end(`${req.headers.soapaction} ${body}`));
      }
      // /silent: never answers
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('returns status and body, and posts with headers', async () => {
    expect(await httpRequest(new URL(`${base}/ok`), { method: 'GET', timeoutMs: 5000 })).toEqual({
      status: 200,
      body: '<root/>',
    });
    const posted = await httpRequest(new URL(`${base}/echo`), {
      method: 'POST',
      headers: { SOAPAction: '"x#y"' },
      body: 'é',
      timeoutMs: 5000,
    });
    expect(posted).toEqual({ status: 500, body: '"x#y" é' });
  });

  it('gives up on oversized bodies, silence and refused connections', async () => {
    expect(
      await httpRequest(new URL(`${base}/declared-huge`), { method: 'GET', timeoutMs: 5000 }),
    ).toBeUndefined();
    expect(
      await httpRequest(new URL(`${base}/streamed-huge`), { method: 'GET', timeoutMs: 5000 }),
    ).toBeUndefined();
    expect(await httpRequest(new URL(`${base}/silent`), { method: 'GET', timeoutMs: 200 })).toBeUndefined();
    expect(
      await httpRequest(new URL('http://127.0.0.1:1/'), { method: 'GET', timeoutMs: 5000 }),
    ).toBeUndefined();
  });
});
