import { DnsResponder, DnsServer } from '@trellis/dns';
import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import pino from 'pino';
import { askTcp, askUdp } from '../../../../packages/dns/test/support/dns-client';
import { answererFor, fakeZone, ZONE } from '../../../../packages/dns/test/support/dns-zone';
import { MeshDns, mayForwardFor } from '../../src/dns/mesh-dns';
import type { Upstream } from '../../src/dns/upstream-forwarder';
import { ResolvedConfigurator } from '../../src/platform/resolved';
import type { ResolverConfigurator, ResolverSettings } from '../../src/platform/resolver-configurator';
import { FakeResolved } from '../helpers/fake-resolved';
import { FakeTimers } from '../helpers/fake-timers';

// DNS follows the exit node: a client's other names go to the exit node's stub and nowhere else
// (failing while it is unusable), and the exit node resolves them for its clients.

const logger = pino({ level: 'silent' });
const SERVFAIL = 2;

const self: NetmapSelf = {
  id: '00000000-0000-4000-8000-000000000001',
  name: 'laptop',
  dnsName: `laptop.acme.${ZONE}`,
  address: '127.0.0.1',
  accountName: 'acme',
  overlayPrefix: '100.64.0.0/10',
};
const nas: NetmapPeer = {
  id: '00000000-0000-4000-8000-000000000002',
  name: 'nas',
  dnsName: `nas.acme.${ZONE}`,
  publicKey: `${'A'.repeat(43)}=`,
  address: '100.64.0.9',
  allowedIps: ['100.64.0.9/32'],
  endpoints: [],
  online: true,
};

class RecordingResolver implements ResolverConfigurator {
  readonly kind = 'resolv-conf' as const;
  applied: ResolverSettings[] = [];
  restored = 0;
  constructor(private readonly others: Upstream[]) {}
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

/** A nameserver on loopback that answers `db.beta.<zone>` with `address`. */
async function nameserver(address: string): Promise<{ server: DnsServer; port: number }> {
  const server = new DnsServer(
    new DnsResponder(answererFor(fakeZone({ beta: { serial: 1, devices: { db: address } } }))),
    logger,
  );
  const { port } = await server.listen('127.0.0.1', 0);
  return { server, port };
}

describe('MeshDns with an exit node', () => {
  const servers: DnsServer[] = [];
  const started: MeshDns[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((d) => d.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function setup() {
    const lan = await nameserver('100.99.0.3');
    const exit = await nameserver('100.70.0.3');
    servers.push(lan.server, exit.server);
    const resolver = new RecordingResolver([{ address: '127.0.0.1', port: lan.port }]);
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: 0, exitPort: exit.port });
    started.push(dns);
    await dns.apply(self, [nas], 1);
    const port = Number(dns.status().listen?.split(':')[1]);
    return { dns, resolver, port, exit };
  }

  it("sends other names to the exit node's stub, not the LAN's, and back when it is turned off", async () => {
    const { dns, resolver, port, exit } = await setup();
    expect((await askUdp(port, `db.beta.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.99.0.3' });
    await dns.followExitNode({ address: '127.0.0.1' });
    expect(dns.status().upstreams).toEqual([`127.0.0.1:${exit.port}`]);
    expect((await askUdp(port, `db.beta.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.70.0.3' });
    const [viaTcp] = await askTcp(port, [[`db.beta.${ZONE}`, 'A']]);
    expect(viaTcp?.answers?.[0]).toMatchObject({ data: '100.70.0.3' });
    expect((await askUdp(port, `nas.acme.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.64.0.9' });
    expect(resolver.applied.at(-1)).toMatchObject({ defaultRoute: true });
    await dns.followExitNode(null);
    expect((await askUdp(port, `db.beta.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.99.0.3' });
    expect(resolver.applied.at(-1)?.defaultRoute).toBeUndefined();
  });

  it('fails other names while the exit node is unusable, and still answers the mesh', async () => {
    const { dns, port } = await setup();
    await dns.followExitNode({ address: null });
    expect((await askUdp(port, `db.beta.${ZONE}`)).rcode).toBe(SERVFAIL);
    expect(dns.status().upstreams).toEqual([]);
    expect((await askUdp(port, `nas.acme.${ZONE}`)).answers?.[0]).toMatchObject({ data: '100.64.0.9' });
  });

  it('keeps the resolver pointed at the mesh while the exit node is in use, even when the stub cannot serve', async () => {
    const { dns, resolver } = await setup();
    await dns.followExitNode({ address: '127.0.0.1' });
    await dns.apply({ ...self, address: '192.0.2.1' }, [nas], 2); // not an address here: cannot bind
    expect(dns.status()).toMatchObject({ listen: null, lastError: expect.stringMatching(/EADDRNOTAVAIL/) });
    expect(resolver.restored).toBe(0); // reverting would send every name to the LAN's resolver
    await dns.followExitNode(null);
    expect(resolver.restored).toBe(1); // without an exit node, names go where they went before
  });

  /** MeshDns over systemd-resolved (in memory), with the resolver's watch on test timers. */
  function overResolved() {
    const runner = new FakeResolved();
    const timers = new FakeTimers();
    const resolver = new ResolvedConfigurator(runner, logger, timers, 5000);
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver, logger, port: 0 });
    started.push(dns);
    const unbindable = { ...self, address: '192.0.2.1' }; // not an address here
    const pointed = { dns: ['192.0.2.1'], domains: [`acme.${ZONE}`, '~.'], defaultRoute: true };
    return { runner, timers, dns, unbindable, pointed };
  }

  it('points the resolver at the mesh when the stub cannot bind at start-up with an exit node saved', async () => {
    const { runner, timers, dns, unbindable, pointed } = overResolved();
    await dns.followExitNode({ address: '127.0.0.1' }); // the saved choice, before the first netmap
    await dns.apply(unbindable, [nas], 1);
    expect(dns.status()).toMatchObject({ listen: null, lastError: expect.stringMatching(/EADDRNOTAVAIL/) });
    expect(runner.links.get('trellis0')).toEqual(pointed); // names fail, never go to the LAN's resolver
    // Watched although no apply ever succeeded: resolved dropping it is put right.
    runner.drop('trellis0');
    const [check] = timers.timeouts();
    if (!check) throw new Error('the resolver is not watched');
    timers.fire(check);
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(runner.links.get('trellis0')).toEqual(pointed);
  });

  it('points the resolver at the mesh when the apply that turns the exit node on cannot bind', async () => {
    const { runner, dns, unbindable, pointed } = overResolved();
    await dns.apply(unbindable, [nas], 1);
    expect(runner.links.get('trellis0')?.domains).toEqual([]); // no exit node: left to the LAN
    await dns.followExitNode({ address: '127.0.0.1' });
    expect(runner.links.get('trellis0')).toEqual(pointed);
  });

  it('as the exit node, passes on the queries of its clients only, never of other peers', () => {
    const clients = new Set(['100.64.0.9']);
    expect(mayForwardFor('100.64.0.9', '100.64.0.2', clients)).toBe(true);
    expect(mayForwardFor('::ffff:100.64.0.9', '100.64.0.2', clients)).toBe(true);
    expect(mayForwardFor('100.64.0.10', '100.64.0.2', clients)).toBe(false);
    expect(mayForwardFor('100.64.0.2', '100.64.0.2', new Set())).toBe(true); // this device itself
  });

  it("as the exit node behind systemd-resolved, resolves its clients' names through resolved's stub", async () => {
    const resolved: ResolverConfigurator = {
      kind: 'resolved',
      apply: async () => undefined,
      restore: async () => undefined,
      upstreams: async () => [],
    };
    const dns = new MeshDns({ interfaceName: 'trellis0', resolver: resolved, logger, port: 0 });
    started.push(dns);
    await dns.apply(self, [nas], 1);
    expect(dns.status().upstreams).toEqual([]);
    await dns.setPeerClients(['100.64.0.9']);
    expect(dns.status().upstreams).toEqual(['127.0.0.53']);
    await dns.setPeerClients([]);
    expect(dns.status().upstreams).toEqual([]);
  });
});

describe('ResolvedConfigurator with an exit node', () => {
  it('makes the mesh link the default route for every name, and takes it back', async () => {
    const runner = new FakeResolved();
    const c = new ResolvedConfigurator(runner, logger);
    const settings = { interfaceName: 'trellis0', server: '100.64.0.5', domain: 'acme.ts.example' };
    await c.apply({ ...settings, defaultRoute: true });
    expect(runner.sets().slice(0, 3)).toEqual([
      'resolvectl dns trellis0 100.64.0.5',
      'resolvectl domain trellis0 acme.ts.example ~.',
      'resolvectl default-route trellis0 true',
    ]);
    await c.apply({ ...settings, defaultRoute: true });
    expect(runner.sets()).toHaveLength(5);
    await c.apply(settings);
    expect(runner.sets().slice(5, 8)).toEqual([
      'resolvectl dns trellis0 100.64.0.5',
      'resolvectl domain trellis0 acme.ts.example',
      'resolvectl default-route trellis0 false',
    ]);
  });
});
