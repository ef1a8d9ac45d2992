import type { ChildProcess } from 'node:child_process';
import { DnsResponder, DnsServer } from '@trellis/dns';
import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import pino from 'pino';
import { askTcp, askUdp } from '../../../../packages/dns/test/support/dns-client';
import { answererFor, fakeZone, ZONE } from '../../../../packages/dns/test/support/dns-zone';
import { MeshDns, mayForwardFor } from '../../src/dns/mesh-dns';
import type { Upstream } from '../../src/dns/upstream-forwarder';
import { ResolvedConfigurator } from '../../src/platform/resolved';
import type { ResolverConfigurator, ResolverSettings } from '../../src/platform/resolver-configurator';
import type { CommandResult, CommandRunner } from '../../src/util/command-runner';

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
  constructor(private readonly others: Upstream[]) {}
  async apply(s: ResolverSettings): Promise<void> {
    this.applied.push(s);
  }
  async restore(): Promise<void> {}
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
    const calls: string[] = [];
    const runner: CommandRunner = {
      run: async (command: string, args: string[]): Promise<CommandResult> => {
        calls.push([command, ...args].join(' '));
        return { stdout: '', stderr: '', code: 0 };
      },
      spawn: (): ChildProcess => {
        throw new Error('not used');
      },
    };
    const c = new ResolvedConfigurator(runner, logger);
    const settings = { interfaceName: 'trellis0', server: '100.64.0.5', domain: 'acme.ts.example' };
    await c.apply({ ...settings, defaultRoute: true });
    expect(calls.slice(0, 3)).toEqual([
      'resolvectl dns trellis0 100.64.0.5',
      'resolvectl domain trellis0 acme.ts.example ~.',
      'resolvectl default-route trellis0 true',
    ]);
    await c.apply({ ...settings, defaultRoute: true });
    expect(calls).toHaveLength(5);
    await c.apply(settings);
    expect(calls.slice(5, 8)).toEqual([
      'resolvectl dns trellis0 100.64.0.5',
      'resolvectl domain trellis0 acme.ts.example',
      'resolvectl default-route trellis0 false',
    ]);
  });
});
