import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { proxyProtocolListener } from '../../apps/broker/src/http/proxy-protocol';
import { INFRA } from './helpers';

const SCRIPT = join(INFRA, 'compose', 'healthz-proxy.js');

/** Exit code of the compose health check against 127.0.0.1:port. */
const run = (port: number) =>
  new Promise<number>((resolve) =>
    execFile(process.execPath, [SCRIPT, `127.0.0.1:${port}`], (err) =>
      resolve(err ? Number((err as { code?: number }).code ?? 1) : 0),
    ),
  );

describe('healthz-proxy.js (compose health check of a --proxy-protocol --plain-http broker)', () => {
  let front: Server;
  let status = 200;
  const rejected: string[] = [];
  beforeAll(async () => {
    // The broker's own PROXY protocol reader in front of a /healthz.
    const app = createServer((req, res) => res.writeHead(req.url === '/healthz' ? status : 404).end());
    front = proxyProtocolListener(app, { onRejected: (reason) => rejected.push(reason) });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise((resolve) => front.close(resolve)));

  it('0 for a 200 through the PROXY reader (its header accepted), 1 for anything else', async () => {
    const port = (front.address() as { port: number }).port;
    expect(await run(port)).toBe(0);
    expect(rejected).toEqual([]);
    status = 503;
    expect(await run(port)).toBe(1);
    front.close();
    expect(await run(port)).toBe(1);
  });
});
