import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsResponder, DnsServer } from '@trellis/dns';
import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import pino from 'pino';
import { askTcp, askUdp } from '../../../../packages/dns/test/support/dns-client';
import { answererFor, fakeZone, queryBytes, ZONE } from '../../../../packages/dns/test/support/dns-zone';
import { MeshDns } from '../../src/dns/mesh-dns';
import { meshZoneOf } from '../../src/dns/mesh-zone';
import { StubResponder } from '../../src/dns/stub-responder';
import type { Upstream } from '../../src/dns/upstream-forwarder';
import { UpstreamForwarder } from '../../src/dns/upstream-forwarder';
import { MANAGED_MARK, ResolvConfConfigurator } from '../../src/platform/resolv-conf';
import type { ResolverConfigurator, ResolverSettings } from '../../src/platform/resolver-configurator';
import { waitFor } from '../../src/util/wait';

const logger = pino({ level: 'silent' });
const NXDOMAIN = 3;
const REFUSED = 5;
const SERVFAIL = 2;

/** This device, its stub bound on loopback (the overlay address in the daemon). */
function self(name = 'laptop'): NetmapSelf {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name,
    dnsName: `${name}.acme.${ZONE}`,
    address: '127.0.0.1',
    accountName: 'acme',
    overlayPrefix: '100.64.0.0/10',
  };
}

function peer(name: string, address: string): NetmapPeer {
  return {
    id: '00000000-0000-4000-8000-000000000002',
    name,
    dnsName: `${name}.acme.${ZONE}`,
    publicKey: `${'A'.repeat(43)}=`,
    address,
    allowedIps: [`${address}/32`],
    endpoints: [],
    online: true,
  };
}

/** Records what the agent asks of the OS resolver. */
class RecordingResolver implements ResolverConfigurator {
  readonly kind = 'resolv-conf' as const;
  applied: ResolverSettings[] = [];
  restored = 0;
  constructor(private readonly others: Upstream[] = []) {}
  async apply(s: ResolverSettings): Promise<void> {
    this.applied.push(s);
  }
  async restore(): Promise<void> {
    this.restored += 1;
  }
  async upstreams(): Promise<Upstream[]> {
    return this.others;
  }
}

function portOf(dns: MeshDns): number {
  const listen = dns.status().listen;
  if (!listen) throw new Error(`not serving: ${dns.status().lastError}`);
  return Number(listen.split(':')[1]);
}

describe('meshZoneOf', () => {
  it('takes the zone from the device name, and answers only its own account', () => {
    const z = meshZoneOf(self(), [peer('nas', '100.64.0.9')], 7);
    expect(z.zone).toBe(ZONE);
    expect(z.domain).toBe(`acme.${ZONE}`);
    expect(z.view.account('acme')?.address('nas')).toBe('100.64.0.9');
    expect(z.view.account('acme')?.address('laptop')).toBe('127.0.0.1');
    expect(z.view.account('other')).toBeUndefined();
  });

  it('refuses a device name that is not <name>.<account>.<zone>', () => {
    expect(() => meshZoneOf({ ...self(), dnsName: 'laptop.elsewhere.example' }, [], 1)).toThrow(
      /not <name>.<account>.<zone>/,
    );
  });
});

describe('MeshDns', () => {
  const started: MeshDns[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((d) => d.close()));
  });
  function meshDns(resolver: ResolverConfigurator | null): MeshDns {
    const d = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: 0 });
    started.push(d);
    return d;
  }

  it("answers the account's names from the netmap, follows a new one, and points the resolver at itself", async () => {
    const resolver = new RecordingResolver();
    const dns = meshDns(resolver);
    await dns.apply(self(), [peer('nas', '100.64.0.9')], 1);
    const port = portOf(dns);
    expect((await askUdp(port, `nas.acme.${ZONE}`)).answers).toEqual([
      expect.objectContaining({ type: 'A', data: '100.64.0.9' }),
    ]);
    expect((await askUdp(port, `LAPTOP.Acme.${ZONE}`)).answers?.[0]).toMatchObject({ data: '127.0.0.1' });
    expect((await askUdp(port, `printer.acme.${ZONE}`)).rcode).toBe(NXDOMAIN);
    // No upstreams (systemd-resolved routes only the domain here): anything else is not ours.
    expect((await askUdp(port, 'example.org')).rcode).toBe(REFUSED);
    expect(resolver.applied).toEqual([
      { interfaceName: 'trellis0', server: '127.0.0.1', domain: `acme.${ZONE}` },
    ]);

    await dns.apply(self(), [peer('nas', '100.64.0.10'), peer('cam', '100.64.0.11')], 2);
    expect(portOf(dns)).toBe(port); // the same socket, the new names
    const [nas, cam] = await askTcp(port, [
      [`nas.acme.${ZONE}`, 'A'],
      [`cam.acme.${ZONE}`, 'A'],
    ]);
    expect(nas?.answers?.[0]).toMatchObject({ data: '100.64.0.10' });
    expect(cam?.answers?.[0]).toMatchObject({ data: '100.64.0.11' });
    expect(dns.status()).toMatchObject({ domain: `acme.${ZONE}`, resolver: 'resolv-conf', lastError: null });
  });

  it('passes other names to the upstream over the transport they came on, answer unchanged', async () => {
    const upstream = new DnsServer(
      new DnsResponder(answererFor(fakeZone({ beta: { serial: 3, devices: { db: '100.70.0.3' } } }))),
      logger,
    );
    const { port: upPort } = await upstream.listen('127.0.0.1', 0);
    try {
      const dns = meshDns(new RecordingResolver([{ address: '127.0.0.1', port: upPort }]));
      await dns.apply(self(), [peer('nas', '100.64.0.9')], 1);
      const port = portOf(dns);
      expect(dns.status().upstreams).toEqual([`127.0.0.1:${upPort}`]);
      expect((await askUdp(port, `db.beta.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.70.0.3' });
      const [viaTcp] = await askTcp(port, [[`db.beta.${ZONE}`, 'A']]);
      expect(viaTcp?.answers?.[0]).toMatchObject({ data: '100.70.0.3' });
      // Its own names are still its own, never asked upstream.
      expect((await askUdp(port, `nas.acme.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.64.0.9' });
    } finally {
      await upstream.close();
    }
  });

  it('does not point the resolver at a stub that could not bind, and says why', async () => {
    const taken = createSocket('udp4');
    await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve));
    const resolver = new RecordingResolver();
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: taken.address().port });
    started.push(dns);
    try {
      await dns.apply(self(), [], 1);
      expect(dns.status()).toMatchObject({ listen: null, lastError: expect.stringMatching(/EADDRINUSE/) });
      expect(resolver.applied).toEqual([]);
    } finally {
      taken.close();
    }
  });

  it('close puts the resolver back and stops answering', async () => {
    const resolver = new RecordingResolver();
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: 0 });
    await dns.apply(self(), [], 1);
    const port = portOf(dns);
    await dns.close();
    expect(resolver.restored).toBe(1);
    expect(dns.status().listen).toBeNull();
    // Its port is free again: nothing of the stub is left listening.
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', resolve);
    });
    again.close();
  });
});

describe('UpstreamForwarder', () => {
  let silent: Socket;
  beforeEach(async () => {
    silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  });
  afterEach(() => silent.close());

  it('gives SERVFAIL with the query id and question when no upstream answers', async () => {
    const forwarder = new UpstreamForwarder([{ address: '127.0.0.1', port: silent.address().port }], 50);
    const q = queryBytes('example.org', 'A', { id: 777 });
    const { wire } = await forwarder.forward(q, 'udp');
    expect(wire.readUInt16BE(0)).toBe(777);
    expect(wire.readUInt16BE(2) & 0x8000).toBe(0x8000);
    expect(wire.readUInt16BE(2) & 0xf).toBe(SERVFAIL);
    expect(wire.readUInt16BE(4)).toBe(1);
    expect(wire.subarray(12)).toEqual(q.subarray(12, 12 + wire.length - 12));
  });

  it('ignores a reply with another id or from another address, and tries the next upstream', async () => {
    const good = new DnsServer(
      new DnsResponder(answererFor(fakeZone({ beta: { serial: 3, devices: { db: '100.70.0.3' } } }))),
      logger,
    );
    const { port } = await good.listen('127.0.0.1', 0);
    silent.on('message', (m, r) => {
      const wrong = Buffer.from(m);
      wrong.writeUInt16BE((m.readUInt16BE(0) + 1) & 0xffff, 0); // another query's id
      wrong.writeUInt16BE(0x8000, 2);
      silent.send(wrong, r.port, r.address);
    });
    try {
      const forwarder = new UpstreamForwarder(
        [
          { address: '127.0.0.1', port: silent.address().port },
          { address: '127.0.0.1', port },
        ],
        200,
      );
      const { wire } = await forwarder.forward(queryBytes(`db.beta.${ZONE}`, 'A', { id: 9 }), 'udp');
      expect(wire.readUInt16BE(0)).toBe(9);
      expect(wire.readUInt16BE(2) & 0xf).toBe(0);
    } finally {
      await good.close();
    }
  });
});

describe('MeshDns with a resolv.conf another program rewrites', () => {
  it('manages it again, and passes other names to the nameservers the new file names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trl-meshdns-'));
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 10.0.0.53\n');
    const resolver = new ResolvConfConfigurator(path, dir, logger, 20);
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: 0 });
    try {
      await dns.apply(self(), [], 1);
      expect(dns.status().upstreams).toEqual(['10.0.0.53']);
      expect(readFileSync(path, 'utf8')).toContain('nameserver 127.0.0.1\n');
      writeFileSync(path, 'nameserver 192.168.1.1\n'); // a DHCP client's new lease
      await waitFor(() => readFileSync(path, 'utf8').startsWith(MANAGED_MARK), 10_000, 20);
      await waitFor(() => dns.status().upstreams[0] === '192.168.1.1', 10_000, 20);
      await dns.close();
      expect(readFileSync(path, 'utf8')).toBe('nameserver 192.168.1.1\n');
    } finally {
      await dns.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('StubResponder', () => {
  /** Records what it is asked to forward; answers SERVFAIL at once. */
  class RecordingForwarder extends UpstreamForwarder {
    forwarded = 0;
    constructor() {
      super([]);
    }
    override async forward(msg: Buffer) {
      this.forwarded += 1;
      return { wire: msg, truncated: () => msg };
    }
  }

  it("passes on only this device's own queries, never a peer's, and never a response", async () => {
    const forwarder = new RecordingForwarder();
    const zone = meshZoneOf(self(), [peer('nas', '100.64.0.9')], 1);
    const stub = new StubResponder(zone, forwarder, (source) => source === '127.0.0.1');
    const other = queryBytes('example.org', 'A');
    await stub.respond(other, '127.0.0.1', 'udp');
    expect(forwarder.forwarded).toBe(1);
    // A peer over the mesh: its own names answered, nothing passed upstream for it.
    const fromPeer = stub.respond(other, '100.64.0.9', 'udp');
    expect(
      typeof fromPeer === 'string' || fromPeer instanceof Promise
        ? null
        : fromPeer.wire.readUInt16BE(2) & 0xf,
    ).toBe(REFUSED);
    const own = stub.respond(queryBytes(`nas.acme.${ZONE}`, 'A'), '100.64.0.9', 'udp');
    expect(typeof own === 'string' || own instanceof Promise ? null : own.wire.readUInt16BE(2) & 0xf).toBe(0);
    const response = Buffer.from(other);
    response.writeUInt16BE(0x8180, 2);
    expect(stub.respond(response, '127.0.0.1', 'udp')).toBe('not-a-query');
    expect(forwarder.forwarded).toBe(1);
  });
});

describe('DnsServer with an answer that comes later', () => {
  it('drops an answer made after the server closed, without throwing', async () => {
    let release: () => void = () => undefined;
    const later = new Promise<void>((resolve) => {
      release = resolve;
    });
    let asked: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => {
      asked = resolve;
    });
    const warnings: string[] = [];
    const server = new DnsServer(
      {
        respond: async (msg: Buffer) => {
          asked();
          await later;
          return { wire: msg, truncated: () => msg };
        },
      },
      { warn: (_o: object, m: string) => warnings.push(m) },
      null,
    );
    const { port } = await server.listen('127.0.0.1', 0);
    const s = createSocket('udp4');
    await new Promise<void>((resolve) =>
      s.send(queryBytes('example.org', 'A'), port, '127.0.0.1', () => resolve()),
    );
    await reached; // the answer is being made
    await server.close();
    release();
    await new Promise((resolve) => setImmediate(resolve));
    s.close();
    expect(warnings).toEqual([]); // not sent, and nothing thrown
  });
});
