import { type GatewayFirewall, type GatewayPolicy, normalizeGateway } from '@trellis/firewall';
import { ALLOW_ALL, type HostedVirtual, type NetmapPeer, OVERLAY_PREFIX } from '@trellis/proto';
import pino from 'pino';
import type { Netmap } from '../../src/control/netmap-tracker';
import { GatewayDriver } from '../../src/gateway/gateway-driver';
import {
  buildGatewayPolicy,
  type GatewayPolicyInput,
  NO_PLAN,
  planGateway,
} from '../../src/gateway/gateway-policy';
import { GatewayRole } from '../../src/gateway/gateway-role';
import type { IpForward } from '../../src/gateway/ip-forward';
import type { LanProbe } from '../../src/gateway/lan-probe';
import { DEFAULT_GATEWAY_PREFS, type FullGatewayPrefs } from '../../src/routes/gateway-prefs';
import { id, peerOf, virtualOf } from '../virtual/fixtures';

const ipp = [{ proto: 'tcp' as const, ports: [[631, 631]] as [number, number][] }];
const NO_EXIT = { advertised: false, wanInterface: null };

// This gateway (1, 100.64.0.1) serves a printer (10) on eth1 and a camera (11) on eth2. Laptop (2) is
// a peer; a sensor (20) is a virtual device behind another gateway (3) that this one reaches.
const printer: HostedVirtual = {
  id: id(10),
  name: 'printer',
  address: '100.64.0.10',
  lanAddress: '192.168.1.100',
  access: [
    { peers: [id(2)], in: ipp },
    { peers: [id(2), id(20)], in: [{ proto: 'icmp' }] },
  ],
};
const camera: HostedVirtual = {
  id: id(11),
  name: 'camera',
  address: '100.64.0.11',
  lanAddress: '10.0.0.5',
  // The printer may open it too: they share this gateway's LANs, never its forwarding.
  access: [{ peers: [id(2), id(10)], in: ALLOW_ALL }],
};
const addresses = new Map([
  [id(2), '100.64.0.2'],
  [id(20), '100.64.0.20'],
]);

function input(more: Partial<GatewayPolicyInput>): GatewayPolicyInput {
  return {
    meshInterface: 'trellis0',
    selfAddress: '100.64.0.1',
    plan: NO_PLAN,
    approved: [],
    masquerade: true,
    wanInterface: null,
    peers: [],
    virtual: [printer, camera],
    addressOf: (peer) => addresses.get(peer),
    ...more,
  };
}

describe('planGateway with virtual devices', () => {
  it('counts them to pick the LAN interface, and leaves out those on another one, saying why', () => {
    const lanOf = new Map([
      ['172.16.0.0/24', 'eth2'],
      ['192.168.1.100/32', 'eth1'],
      ['192.168.1.101/32', 'eth1'],
      ['10.0.0.5/32', 'eth2'],
      ['10.9.9.9/32', null],
    ]);
    const plan = planGateway(['172.16.0.0/24'], lanOf, 'trellis0', NO_EXIT, [
      '192.168.1.100',
      '192.168.1.101',
      '10.0.0.5',
      '10.9.9.9',
    ]);
    expect(plan).toEqual({
      lanInterface: 'eth1',
      served: [],
      down: ['172.16.0.0/24'],
      virtualServed: ['192.168.1.100', '192.168.1.101'],
      virtualDown: [
        {
          lanAddress: '10.0.0.5',
          reason: 'its LAN address is on eth2, not on the LAN interface in use (eth1)',
        },
        { lanAddress: '10.9.9.9', reason: 'no route to its LAN address on an interface that is up' },
      ],
    });
  });
});

describe('buildGatewayPolicy with virtual devices', () => {
  const onEth1 = planGateway([], new Map([['192.168.1.100/32', 'eth1']]), 'trellis0', NO_EXIT, [
    '192.168.1.100',
  ]);

  it('serves a virtual device alone: a LAN without routes, its 1:1 NAT, its peers by address', () => {
    const policy = buildGatewayPolicy(input({ plan: onEth1, virtual: [printer] }));
    expect(policy).toEqual({
      meshInterface: 'trellis0',
      selfAddress: '100.64.0.1',
      lan: { interfaceName: 'eth1', routes: [], masquerade: true },
      virtualDevices: [{ meshAddress: '100.64.0.10', lanAddress: '192.168.1.100' }],
      access: [
        // Two grants to one peer are one entry; the sensor (another gateway's) by its own address.
        { peer: '100.64.0.2', destination: '100.64.0.10', allow: [{ proto: 'icmp' }, ...ipp] },
        { peer: '100.64.0.20', destination: '100.64.0.10', allow: [{ proto: 'icmp' }] },
      ],
    });
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('serves virtual devices next to routes on the same LAN; --snat-routes false is kept', () => {
    const lanOf = new Map([
      ['192.168.1.0/24', 'eth1'],
      ['192.168.1.100/32', 'eth1'],
    ]);
    const plan = planGateway(['192.168.1.0/24'], lanOf, 'trellis0', NO_EXIT, ['192.168.1.100']);
    const policy = buildGatewayPolicy(
      input({
        plan,
        approved: ['192.168.1.0/24'],
        masquerade: false,
        virtual: [printer],
        peers: [{ address: '100.64.0.2', routesIn: [{ prefix: '192.168.1.0/24', rules: ALLOW_ALL }] }],
      }),
    );
    expect(policy?.lan).toEqual({ interfaceName: 'eth1', routes: ['192.168.1.0/24'], masquerade: false });
    expect(policy?.access.map((a) => `${a.peer} ${a.destination}`)).toEqual([
      '100.64.0.2 192.168.1.0/24',
      '100.64.0.2 100.64.0.10',
      '100.64.0.20 100.64.0.10',
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('leaves out a virtual device on another interface, and a peer id it cannot map', () => {
    const plan = planGateway(
      [],
      new Map([
        ['192.168.1.100/32', 'eth1'],
        ['10.0.0.5/32', 'eth2'],
      ]),
      'trellis0',
      NO_EXIT,
      ['192.168.1.100', '10.0.0.5'],
    );
    // eth1 and eth2 carry one each: the name breaks the tie (eth1), as for routes.
    const policy = buildGatewayPolicy(
      input({ plan, addressOf: (p) => (p === id(2) ? '100.64.0.2' : undefined) }),
    );
    expect(policy?.virtualDevices).toEqual([{ meshAddress: '100.64.0.10', lanAddress: '192.168.1.100' }]);
    expect(policy?.access).toEqual([
      { peer: '100.64.0.2', destination: '100.64.0.10', allow: [{ proto: 'icmp' }, ...ipp] },
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('gives one of its own virtual devices no forwarding to another (they share the LAN)', () => {
    const lanOf = new Map([
      ['192.168.1.100/32', 'eth1'],
      ['10.0.0.5/32', 'eth1'],
    ]);
    const plan = planGateway([], lanOf, 'trellis0', NO_EXIT, ['192.168.1.100', '10.0.0.5']);
    // Were the printer mapped (a broker listing it as a peer), its address is this gateway's own.
    const mapped = new Map([...addresses, [id(10), '100.64.0.10']]);
    const policy = buildGatewayPolicy(input({ plan, addressOf: (p) => mapped.get(p) }));
    expect(policy?.access.filter((a) => a.destination === '100.64.0.11')).toEqual([
      { peer: '100.64.0.2', destination: '100.64.0.11', allow: ALLOW_ALL },
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('has no role when no virtual device can be served and nothing else is', () => {
    const down = planGateway([], new Map(), 'trellis0', NO_EXIT, ['192.168.1.100']);
    expect(buildGatewayPolicy(input({ plan: down }))).toBeNull();
  });
});

describe('GatewayDriver serving only virtual devices', () => {
  const client: NetmapPeer = peerOf(2, 'laptop', '100.64.0.2');

  function setup(prefs: FullGatewayPrefs = DEFAULT_GATEWAY_PREFS) {
    const probed: string[] = [];
    const links = new Map<string, string | null>([['192.168.1.100/32', 'eth1']]);
    const local = ['127.0.0.0/8', '192.168.1.1/32'];
    const lan: LanProbe = {
      routeInterface: async (p) => {
        probed.push(p);
        return links.get(p) ?? null;
      },
      defaultInterface: async () => 'wan0',
      onLinkSubnets: async () => [],
      localAddresses: async () => local,
    };
    const applied: Array<GatewayPolicy | 'removed'> = [];
    const firewall: GatewayFirewall = {
      name: 'fake',
      apply: async (p) => {
        applied.push(p);
        return { changed: true };
      },
      remove: async () => {
        applied.push('removed');
      },
    };
    const forwarding: string[] = [];
    const forward = {
      enable: async () => forwarding.push('on'),
      restore: async () => forwarding.push('restored'),
    } as unknown as IpForward;
    const warned: unknown[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warned.push(JSON.parse(line)) });
    const driver = new GatewayDriver({
      meshInterface: 'trellis0',
      prefs: () => prefs,
      lan,
      role: new GatewayRole(firewall, forward, pino({ level: 'silent' })),
      advertise: () => undefined,
      reapply: () => undefined,
      logger,
    });
    return { driver, probed, links, applied, forwarding, warned };
  }

  function netmap(hosted: HostedVirtual[]): Netmap {
    return {
      serial: 1,
      self: {
        id: id(1),
        name: 'gw',
        dnsName: 'gw.acme.trellis.test',
        address: '100.64.0.1',
        accountName: 'acme',
        overlayPrefix: OVERLAY_PREFIX,
        virtualDevices: hosted,
      },
      peers: [client],
      access: new Map(),
      virtual: [virtualOf(10, 'printer', '100.64.0.10', 1)],
    };
  }

  it('starts the role (rules and ip_forward) for a virtual device with no route advertised', async () => {
    const t = setup();
    await t.driver.applyInQueue(netmap([printer]), [client]);
    expect(t.probed).toEqual(['192.168.1.100/32']);
    expect(t.applied).toEqual([
      {
        meshInterface: 'trellis0',
        selfAddress: '100.64.0.1',
        lan: { interfaceName: 'eth1', routes: [], masquerade: true },
        virtualDevices: [{ meshAddress: '100.64.0.10', lanAddress: '192.168.1.100' }],
        access: [{ peer: '100.64.0.2', destination: '100.64.0.10', allow: [{ proto: 'icmp' }, ...ipp] }],
      },
    ]);
    expect(t.forwarding).toEqual(['on']);
    expect(t.driver.virtualStatus()).toEqual([
      { name: 'printer', address: '100.64.0.10', lanAddress: '192.168.1.100', served: true },
    ]);
  });

  it('probes a newly served virtual device at once, and ends the role when its LAN goes', async () => {
    const t = setup();
    await t.driver.applyInQueue(netmap([]), [client]);
    expect(t.applied).toEqual(['removed']); // no role; whatever a killed run left goes
    await t.driver.applyInQueue(netmap([printer, camera]), [client]);
    expect(t.probed).toEqual(['192.168.1.100/32', '10.0.0.5/32']);
    expect(t.applied.at(-1)).toMatchObject({ virtualDevices: [{ meshAddress: '100.64.0.10' }] });
    expect(t.driver.virtualStatus().map((v) => [v.name, v.served, v.reason])).toEqual([
      ['printer', true, undefined],
      ['camera', false, 'no route to its LAN address on an interface that is up'],
    ]);
    t.links.set('192.168.1.100/32', null); // cable out
    await t.driver.refresh();
    await t.driver.applyInQueue(netmap([printer, camera]), [client]);
    expect(t.applied.at(-1)).toBe('removed');
    expect(t.forwarding.at(-1)).toBe('restored');
  });

  it('reports a virtual device it leaves out of the policy as not served, and logs it once', async () => {
    const t = setup();
    // The gateway's own LAN address (its services would be open to the VD's peers), and the
    // laptop's mesh address (the firewall would refuse the whole policy).
    const own: HostedVirtual = {
      ...printer,
      id: id(12),
      name: 'own',
      address: '100.64.0.12',
      lanAddress: '192.168.1.1',
    };
    const clash: HostedVirtual = {
      ...printer,
      id: id(13),
      name: 'clash',
      address: '100.64.0.2',
      lanAddress: '192.168.1.13',
    };
    t.links.set('192.168.1.1/32', 'eth1');
    t.links.set('192.168.1.13/32', 'eth1');
    await t.driver.applyInQueue(netmap([printer, own, clash]), [client]);
    await t.driver.applyInQueue(netmap([printer, own, clash]), [client]);
    expect(t.applied.at(-1)).toMatchObject({
      virtualDevices: [{ meshAddress: '100.64.0.10', lanAddress: '192.168.1.100' }],
    });
    expect(() => normalizeGateway(t.applied.at(-1) as GatewayPolicy)).not.toThrow();
    expect(t.driver.virtualStatus().map((v) => [v.name, v.served, v.reason])).toEqual([
      ['printer', true, undefined],
      [
        'own',
        false,
        "its LAN address 192.168.1.1 is this gateway's own (it would expose the gateway's services)",
      ],
      ['clash', false, "its mesh address 100.64.0.2 is also a peer's"],
    ]);
    expect(t.warned.filter((w) => (w as { msg: string }).msg === 'virtual device not served')).toHaveLength(
      2,
    );
  });
});
