import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { DnsResponder } from '../src/dns-responder';
import { DnsServer } from '../src/dns-server';
import { ResponseLimiter } from '../src/response-limiter';
import { answererFor, fakeZone } from './support/dns-zone';

/** Socket errors are not what these tests look at. */
const log = { warn: () => undefined };
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
      const server = new DnsServer(new DnsResponder(answerer), log);
      await expect(server.listen('127.0.0.1', port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(await udpFree(port)).toBe(true);
    } finally {
      taken.close();
    }
  });

  it('listens on a host name too (looked up once, at bind)', async () => {
    const server = new DnsServer(new DnsResponder(answerer), log);
    const { port } = await server.listen('localhost', 0);
    try {
      const { askUdp } = await import('./support/dns-client');
      expect((await askUdp(port, `a.acme.${(await import('./support/dns-zone')).ZONE}`)).rcode).toBe(3); // NXDOMAIN from the empty zone: it answered
    } finally {
      await server.close();
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
    const server = new Unlucky(new DnsResponder(answerer), log);
    const { port } = await server.listen('127.0.0.1', 0);
    expect(server.attempts).toBe(3);
    expect(port).toBeGreaterThan(0);
    await server.close();
    expect(await udpFree(port)).toBe(true);
  });
});

describe('DnsServer over TCP', () => {
  it('drops a client that sends queries and never reads the answers', async () => {
    const { connect } = await import('node:net');
    const { queryBytes, ZONE } = await import('./support/dns-zone');
    const server = new DnsServer(
      new DnsResponder(answererFor(fakeZone({ acme: { serial: 1, devices: { a: '100.64.0.1' } } }))),
      log,
    );
    const { port } = await server.listen('127.0.0.1', 0);
    try {
      const q = queryBytes(`a.acme.${ZONE}`, 'A');
      const framed = Buffer.alloc(2 + q.length);
      framed.writeUInt16BE(q.length, 0);
      q.copy(framed, 2);
      const socket = connect(port, '127.0.0.1');
      socket.pause(); // never reads
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
      // Tens of megabytes of answers asked for; the server gives up on the client long before.
      const burst = Buffer.concat(Array.from({ length: 2000 }, () => framed));
      for (let i = 0; i < 200 && !socket.destroyed; i++) {
        socket.write(burst);
        await new Promise((r) => setImmediate(r));
      }
      // The deadline only ends a broken run: the server must have dropped the client by then.
      let deadline: NodeJS.Timeout | undefined;
      const gaveUp = new Promise<never>((_, reject) => {
        deadline = setTimeout(
          () => reject(new Error('the server kept answering a client that reads nothing')),
          20_000,
        );
      });
      try {
        await Promise.race([closed, gaveUp]);
      } finally {
        clearTimeout(deadline);
        socket.destroy();
      }
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('DnsServer rate limiting', () => {
  /**
   * Sends `count` queries at once from one socket and resolves with how many answers it got. A
   * query from another source network (127.0.1.1: its own bucket) then marks the end: loopback
   * delivers each answer as it is sent, so every answer to the burst is queued before the marker's.
   */
  async function burst(port: number, count: number): Promise<number> {
    const { queryBytes, ZONE } = await import('./support/dns-zone');
    const bind = async (address: string) => {
      const s = createSocket('udp4');
      await new Promise<void>((resolve) => s.bind(0, address, resolve));
      return s;
    };
    const s = await bind('127.0.0.1');
    const marker = await bind('127.0.1.1');
    let answers = 0;
    s.on('message', () => {
      answers += 1;
    });
    for (let i = 0; i < count; i++) s.send(queryBytes(`a.acme.${ZONE}`, 'A', { id: i }), port, '127.0.0.1');
    await new Promise<void>((resolve) => {
      marker.once('message', () => resolve());
      marker.send(queryBytes(`a.acme.${ZONE}`, 'A'), port, '127.0.0.1');
    });
    await new Promise((resolve) => setImmediate(resolve));
    s.close();
    marker.close();
    return answers;
  }

  it('limits one source network by default, and nothing without a limiter', async () => {
    const responder = new DnsResponder(
      answererFor(fakeZone({ acme: { serial: 1, devices: { a: '100.64.0.1' } } })),
    );
    const limits = { perSecond: 1, burst: 10, slip: 1_000_000, maxSources: 10 };
    // The clock stands still: the bucket never refills during the burst.
    const limited = new DnsServer(responder, log, new ResponseLimiter(limits), undefined, () => 0);
    const open = new DnsServer(responder, log, null);
    const a = await limited.listen('127.0.0.1', 0);
    const b = await open.listen('127.0.0.1', 0);
    try {
      // 100: the server reads only after the burst is sent (one process), and its socket's
      // receive queue (net.core.rmem_default) holds about 200 such datagrams.
      expect(await burst(b.port, 100)).toBe(100);
      expect(await burst(a.port, 100)).toBe(10);
    } finally {
      await limited.close();
      await open.close();
    }
  });
});
