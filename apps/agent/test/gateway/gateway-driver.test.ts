import type { GatewayFirewall, GatewayPolicy } from '@trellis/firewall';
import {
  type AdvertiseMessage,
  ALLOW_ALL,
  EXIT_ROUTE,
  type NetmapPeer,
  OVERLAY_PREFIX,
} from '@trellis/proto';
import pino from 'pino';
import type { Netmap } from '../../src/control/netmap-tracker';
import { GatewayDriver } from '../../src/gateway/gateway-driver';
import { GatewayRole } from '../../src/gateway/gateway-role';
import type { IpForward } from '../../src/gateway/ip-forward';
import type { LanProbe } from '../../src/gateway/lan-probe';
import { DEFAULT_GATEWAY_PREFS, type FullGatewayPrefs } from '../../src/routes/gateway-prefs';

const logger = pino({ level: 'silent' });

function setup(prefs: FullGatewayPrefs) {
  const links = new Map<string, string | null>([['192.168.1.0/24', 'eth1']]);
  const lan: LanProbe = {
    routeInterface: async (p) => links.get(p) ?? null,
    defaultInterface: async () => 'wan0',
    onLinkSubnets: async () => ['192.0.2.0/24'],
    localAddresses: async () => ['127.0.0.0/8', '192.168.1.2/32'],
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
  const forward = { enable: async () => undefined, restore: async () => undefined } as unknown as IpForward;
  const sent: AdvertiseMessage[] = [];
  let reapplies = 0;
  const driver = new GatewayDriver({
    meshInterface: 'trellis0',
    prefs: () => prefs,
    lan,
    role: new GatewayRole(firewall, forward, logger),
    advertise: (m) => sent.push(m),
    reapply: () => {
      reapplies++;
    },
    logger,
  });
  return { driver, links, sent, applied, reapplies: () => reapplies };
}

const client: NetmapPeer = {
  id: 'c',
  name: 'laptop',
  dnsName: 'laptop.acme.test',
  publicKey: `${'c'.repeat(43)}=`,
  address: '100.64.0.7',
  allowedIps: ['100.64.0.7/32'],
  endpoints: [],
  online: true,
};

function netmap(approved: boolean): Netmap {
  return {
    serial: 1,
    self: {
      id: 'self',
      name: 'gw',
      dnsName: 'gw.acme.test',
      address: '100.64.0.1',
      accountName: 'acme',
      overlayPrefix: OVERLAY_PREFIX,
      routes: [{ prefix: '192.168.1.0/24', approved }],
    },
    peers: [client],
    access: new Map([['c', { in: [], out: [], routesIn: [{ prefix: '192.168.1.0/24', rules: ALLOW_ALL }] }]]),
    virtual: [],
  };
}

describe('GatewayDriver', () => {
  const prefs = { ...DEFAULT_GATEWAY_PREFS, advertiseRoutes: ['192.168.1.0/24'] };

  it('advertises its routes, and reports one down when its LAN goes, and up when it returns', async () => {
    const t = setup(prefs);
    await t.driver.refresh();
    expect(t.sent).toEqual([{ type: 'advertise', routes: ['192.168.1.0/24'] }]);
    t.links.set('192.168.1.0/24', null); // cable out
    await t.driver.refresh();
    expect(t.sent.at(-1)).toEqual({
      type: 'advertise',
      routes: ['192.168.1.0/24'],
      down: ['192.168.1.0/24'],
    });
    await t.driver.refresh(); // nothing changed: nothing sent
    expect(t.sent).toHaveLength(2);
    t.links.set('192.168.1.0/24', 'eth1');
    await t.driver.refresh();
    expect(t.sent.at(-1)).toEqual({ type: 'advertise', routes: ['192.168.1.0/24'] });
    expect(t.driver.advertised(netmap(true))).toEqual([
      { prefix: '192.168.1.0/24', approved: true, down: false },
    ]);
    expect(t.reapplies()).toBe(3);
  });

  it('forwards only once the route is approved, and ends the role when it is withdrawn', async () => {
    const t = setup(prefs);
    await t.driver.refresh();
    await t.driver.applyInQueue(netmap(false), [client]);
    expect(t.applied).toEqual(['removed']); // whatever a killed run left
    await t.driver.applyInQueue(netmap(true), [client]);
    expect(t.applied.slice(1)).toEqual([
      {
        meshInterface: 'trellis0',
        selfAddress: '100.64.0.1',
        lan: { interfaceName: 'eth1', routes: ['192.168.1.0/24'], masquerade: true },
        virtualDevices: [],
        access: [{ peer: '100.64.0.7', destination: '192.168.1.0/24', allow: ALLOW_ALL }],
      },
    ]);
    expect(t.driver.clientsOf(netmap(true), [client])).toEqual([client]);
    await t.driver.applyInQueue(netmap(false), [client]);
    expect(t.applied.at(-1)).toBe('removed');
    expect(t.driver.clientsOf(netmap(false), [client])).toEqual([]);
  });

  it('as an exit node, keeps its clients off its own on-link subnets and private ranges', async () => {
    const t = setup({ ...DEFAULT_GATEWAY_PREFS, advertiseExitNode: true });
    await t.driver.refresh();
    const m = netmap(true);
    m.self.routes = [{ prefix: EXIT_ROUTE, approved: true }];
    m.access = new Map([['c', { in: [], out: [], routesIn: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }] }]]);
    await t.driver.applyInQueue(m, [client]);
    const policy = t.applied.at(-1) as GatewayPolicy;
    expect(policy.exitNode?.peers).toEqual(['100.64.0.7']);
    expect(policy.exitNode?.excluded).toEqual(expect.arrayContaining(['192.168.0.0/16', '192.0.2.0/24']));
  });
});
