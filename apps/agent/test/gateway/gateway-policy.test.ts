import { normalizeGateway } from '@trellis/firewall';
import { ALLOW_ALL, EXIT_ROUTE } from '@trellis/proto';
import { buildGatewayPolicy, mergeRules, NO_PLAN, planGateway } from '../../src/gateway/gateway-policy';

describe('planGateway', () => {
  it('serves the routes of the interface carrying most of them and reports the rest down', () => {
    const lanOf = new Map([
      ['192.168.1.0/24', 'eth1'],
      ['192.168.2.0/24', 'eth1'],
      ['10.0.0.0/8', 'eth2'],
      ['172.16.0.0/12', null],
      ['10.200.0.0/16', 'trellis0'],
    ]);
    const plan = planGateway([...lanOf.keys()], lanOf, 'trellis0', { advertised: false, wanInterface: null });
    expect(plan).toEqual({
      lanInterface: 'eth1',
      served: ['192.168.1.0/24', '192.168.2.0/24'],
      down: ['10.0.0.0/8', '10.200.0.0/16', '172.16.0.0/12'],
      virtualServed: [],
      virtualDown: [],
    });
  });

  it('reports the exit route down without a default route', () => {
    const none = planGateway([], new Map(), 'trellis0', { advertised: true, wanInterface: null });
    expect(none).toEqual({ ...NO_PLAN, down: [EXIT_ROUTE] });
    const wan = planGateway([], new Map(), 'trellis0', { advertised: true, wanInterface: 'wan0' });
    expect(wan.down).toEqual([]);
  });
});

describe('buildGatewayPolicy', () => {
  const base = {
    meshInterface: 'trellis0',
    selfAddress: '100.64.0.1',
    plan: { ...NO_PLAN, lanInterface: 'eth1', served: ['192.168.1.0/24', '192.168.2.0/24'] },
    masquerade: true,
    wanInterface: 'wan0',
  };
  const web = [{ proto: 'tcp' as const, ports: [[443, 443]] as [number, number][] }];

  it('forwards approved, served routes to the peers the policy names, narrowed to the routes', () => {
    const policy = buildGatewayPolicy({
      ...base,
      approved: ['192.168.1.0/24'],
      peers: [
        { address: '100.64.0.2', routesIn: [{ prefix: '192.168.0.0/16', rules: ALLOW_ALL }] },
        { address: '100.64.0.3', routesIn: [{ prefix: '192.168.1.5/32', rules: web }] },
        { address: '100.64.0.4', routesIn: [{ prefix: '10.0.0.0/8', rules: ALLOW_ALL }] },
      ],
    });
    expect(policy).toEqual({
      meshInterface: 'trellis0',
      selfAddress: '100.64.0.1',
      lan: { interfaceName: 'eth1', routes: ['192.168.1.0/24'], masquerade: true },
      virtualDevices: [],
      access: [
        { peer: '100.64.0.2', destination: '192.168.1.0/24', allow: ALLOW_ALL },
        { peer: '100.64.0.3', destination: '192.168.1.5/32', allow: web },
      ],
    });
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('is an exit node for the peers whose access covers the exit route, when approved', () => {
    const policy = buildGatewayPolicy({
      ...base,
      plan: NO_PLAN,
      approved: [EXIT_ROUTE],
      onLink: ['203.0.113.0/24'],
      peers: [
        { address: '100.64.0.2', routesIn: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }] },
        { address: '100.64.0.3', routesIn: [] },
      ],
    });
    expect(policy).toEqual({
      meshInterface: 'trellis0',
      selfAddress: '100.64.0.1',
      virtualDevices: [],
      access: [],
      exitNode: {
        wanInterface: 'wan0',
        peers: ['100.64.0.2'],
        // Private, shared and link-local ranges, and its own subnets (one NIC: the WAN is the LAN).
        excluded: [
          '10.0.0.0/8',
          '172.16.0.0/12',
          '192.168.0.0/16',
          '100.64.0.0/10',
          '169.254.0.0/16',
          '203.0.113.0/24',
        ],
      },
    });
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('an exit node serving a subnet: EXIT_ROUTE access opens the exit route only, no subnet', () => {
    const policy = buildGatewayPolicy({
      ...base,
      approved: [EXIT_ROUTE, '192.168.1.0/24'],
      peers: [
        { address: '100.64.0.2', routesIn: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }] },
        { address: '100.64.0.3', routesIn: [{ prefix: '192.168.1.0/24', rules: web }] },
      ],
    });
    expect(policy!.access).toEqual([{ peer: '100.64.0.3', destination: '192.168.1.0/24', allow: web }]);
    expect(policy!.exitNode?.peers).toEqual(['100.64.0.2']);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it('has no role without an approved route it can serve', () => {
    expect(buildGatewayPolicy({ ...base, approved: [], peers: [] })).toBeNull();
    expect(buildGatewayPolicy({ ...base, approved: ['10.0.0.0/8'], peers: [] })).toBeNull();
    expect(buildGatewayPolicy({ ...base, approved: [EXIT_ROUTE], wanInterface: null, peers: [] })).toBeNull();
  });

  it('merges two grants of one destination into one entry', () => {
    const policy = buildGatewayPolicy({
      ...base,
      approved: ['192.168.1.0/24'],
      peers: [
        {
          address: '100.64.0.2',
          routesIn: [
            { prefix: '192.168.1.0/24', rules: web },
            { prefix: '192.168.0.0/16', rules: [{ proto: 'icmp' }] },
          ],
        },
      ],
    });
    expect(policy!.access).toEqual([
      { peer: '100.64.0.2', destination: '192.168.1.0/24', allow: [{ proto: 'icmp' }, ...web] },
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });
});

describe('mergeRules', () => {
  it('keeps one rule per protocol; "everything" wins', () => {
    expect(mergeRules([{ proto: 'tcp', ports: [[22, 22]] }], [{ proto: 'tcp', ports: [[80, 80]] }])).toEqual([
      {
        proto: 'tcp',
        ports: [
          [22, 22],
          [80, 80],
        ],
      },
    ]);
    expect(mergeRules([{ proto: 'udp' }], [{ proto: 'udp', ports: [[53, 53]] }])).toEqual([{ proto: 'udp' }]);
    expect(mergeRules([{ proto: 'icmp' }], ALLOW_ALL)).toEqual([{}]);
  });
});
