import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a Prometheus registry gives a scrape (prom-client's Registry is one). */
export interface MetricsSource {
  readonly contentType: string;
  /** The exposition text; called once per scrape. */
  metrics(): Promise<string>;
}

/**
 * Plain HTTP for a scraper on a private or loopback address: `GET /metrics`, 404 for anything
 * else, 500 when the source fails. Resolves once listening; rejects when the address is taken.
 */
export async function serveMetrics(source: MetricsSource, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    source.metrics().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** The port a server listens on (after listening on port 0). */
export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}
