import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import pino from 'pino';
import { DnsServer } from '../../src/dns/dns-server';
import { answererFor, fakeZone } from '../support/dns-zone';

const log = pino({ level: 'silent' });
const answerer = answererFor(fakeZone({}));

/** Binds a UDP socket to the port, proving nobody holds it; then lets it go. */
async function udpFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

describe('DnsServer.listen', () => {
  it('a given port whose TCP side is taken fails, and leaves the UDP side free again', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const server = new DnsServer(answerer, log);
      await expect(server.listen('127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(await udpFree(port)).toBe(true);
    } finally {
      taken.close();
    }
  });

  it('with port 0, a number already used by TCP is given up for another', async () => {
    class Unlucky extends DnsServer {
      attempts = 0;
      protected override async bindBoth(host: string, port: number): Promise<{ port: number }> {
        this.attempts++;
        if (this.attempts < 3) {
          throw Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
        }
        return super.bindBoth(host, port);
      }
    }
    const server = new Unlucky(answerer, log);
    const { port } = await server.listen('127.0.0.1', 0);
    expect(server.attempts).toBe(3);
    expect(port).toBeGreaterThan(0);
    await server.close();
    expect(await udpFree(port)).toBe(true);
  });
});
