import { createServer } from 'node:net';
import { boundPort, parseListenAddress, serveMetrics } from '@trellis/metrics';

describe('serveMetrics', () => {
  it('serves GET /metrics with the source content type, 404 elsewhere, 500 when the source fails', async () => {
    let fail = false;
    const source = {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      metrics: async () => {
        if (fail) throw new Error('no status');
        return 'up 1\n';
      },
    };
    const server = await serveMetrics(source, '127.0.0.1', 0);
    try {
      const url = `http://127.0.0.1:${boundPort(server)}`;
      const ok = await fetch(`${url}/metrics?x=1`);
      expect([ok.status, ok.headers.get('content-type'), await ok.text()]).toEqual([
        200,
        source.contentType,
        'up 1\n',
      ]);
      expect((await fetch(`${url}/`)).status).toBe(404);
      expect((await fetch(`${url}/metrics`, { method: 'POST' })).status).toBe(404);
      fail = true;
      expect((await fetch(`${url}/metrics`)).status).toBe(500);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('rejects when the address is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(
        serveMetrics({ contentType: 'x', metrics: async () => '' }, '127.0.0.1', port),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      taken.close();
    }
  });
});

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:9101', { host: '127.0.0.1', port: 9101 }],
    [':9101', { host: '0.0.0.0', port: 9101 }],
    ['[::1]:0', { host: '::1', port: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535 }],
  ])('%s', (text, expected) => {
    expect(parseListenAddress('--metrics-listen', text)).toEqual(expected);
  });

  it.each(['9101', '::1:9101', 'host:', 'host:65536', 'host:-1', 'host:1e3', 'host: 80'])(
    'refuses %j, naming the flag',
    (text) => {
      expect(() => parseListenAddress('--metrics-listen', text)).toThrow(
        `--metrics-listen must be HOST:PORT (IPv6 in brackets), got "${text}"`,
      );
    },
  );
});
