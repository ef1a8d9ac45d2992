import { FirewallPolicyError, type GatewayPolicy, normalizeGateway } from '../src';
import { EMPTY_GATEWAY, ROUTES_MASQ, VIRTUAL_DEVICES } from './support/gateway-fixtures';

const bad = (p: unknown) => () => normalizeGateway(p as GatewayPolicy);

describe('normalizeGateway', () => {
  it('merges rules, sorts, and leaves out pairs allowed nothing', () => {
    const g = normalizeGateway(ROUTES_MASQ);
    expect(g.lan).toEqual({
      interfaceName: 'eth1',
      routes: ['10.20.0.0/16', '192.168.1.0/24'],
      masquerade: true,
    });
    expect(g.access.map((a) => `${a.peer}>${a.destination}`)).toEqual([
      '100.64.0.2>192.168.1.0/24',
      '100.64.0.3>10.20.0.0/16',
      '100.64.0.4>10.20.5.0/24',
    ]);
    expect(g.access[0]).toMatchObject({
      all: false,
      icmp: true,
      tcp: [
        [22, 22],
        [80, 90],
      ],
      udp: [],
    });
    expect(g.exitNode).toBeNull();
  });

  it('names a virtual device destination as its /32 and sorts devices by mesh address', () => {
    const g = normalizeGateway(VIRTUAL_DEVICES);
    expect(g.virtualDevices.map((d) => d.meshAddress)).toEqual(['100.64.7.1', '100.64.7.2']);
    expect(g.access.map((a) => a.destination)).toEqual(['100.64.7.1/32', '100.64.7.2/32']);
  });

  it('an empty gateway forwards nothing', () => {
    expect(normalizeGateway(EMPTY_GATEWAY)).toMatchObject({
      lan: null,
      virtualDevices: [],
      access: [],
      exitNode: null,
    });
  });

  it('exit exclusions: host bits cleared, those inside another left out, sorted', () => {
    const g = normalizeGateway({
      ...EMPTY_GATEWAY,
      exitNode: {
        wanInterface: 'eth0',
        peers: [],
        excluded: [
          '192.168.7.9/24',
          '10.0.0.0/8',
          '192.168.0.0/16',
          '10.1.0.0/16',
          '10.0.0.0/8',
          '203.0.113.0/24',
        ],
      },
    });
    expect(g.exitNode?.excluded).toEqual(['10.0.0.0/8', '192.168.0.0/16', '203.0.113.0/24']);
  });

  it('refuses anything that could inject into a ruleset or is not an address', () => {
    const lan = ROUTES_MASQ.lan!;
    const cases: Array<[unknown, RegExp]> = [
      [{ ...EMPTY_GATEWAY, meshInterface: 'wg0" accept' }, /meshInterface/],
      [{ ...ROUTES_MASQ, lan: { ...lan, interfaceName: 'eth1; flush ruleset' } }, /lan.interfaceName/],
      [{ ...ROUTES_MASQ, lan: { ...lan, interfaceName: 'trellis0' } }, /mesh interface/],
      [{ ...ROUTES_MASQ, lan: { ...lan, routes: ['192.168.1.0/24 } drop'] } }, /lan.routes\[0\]/],
      [{ ...ROUTES_MASQ, lan: { ...lan, routes: ['192.168.1.1/24'] } }, /host bits/],
      [{ ...ROUTES_MASQ, lan: { ...lan, routes: ['0.0.0.0/0'] } }, /exit node/],
      [{ ...ROUTES_MASQ, lan: { ...lan, routes: ['100.64.3.0/24'] } }, /overlay/],
      [{ ...ROUTES_MASQ, lan: { ...lan, routes: ['64.0.0.0/2'] } }, /overlay/],
      [{ ...ROUTES_MASQ, lan: { ...lan, masquerade: 'yes' } }, /masquerade/],
      [{ ...ROUTES_MASQ, selfAddress: '10.0.0.1' }, /selfAddress/],
      [
        { ...EMPTY_GATEWAY, virtualDevices: [{ meshAddress: '100.64.7.1', lanAddress: '192.168.1.5' }] },
        /need lan/,
      ],
      [
        { ...VIRTUAL_DEVICES, virtualDevices: [{ meshAddress: '100.64.7.1', lanAddress: '100.64.9.9' }] },
        /lanAddress/,
      ],
      [
        { ...VIRTUAL_DEVICES, virtualDevices: [{ meshAddress: '10.1.1.1', lanAddress: '192.168.1.5' }] },
        /meshAddress/,
      ],
      [
        {
          ...VIRTUAL_DEVICES,
          virtualDevices: [{ meshAddress: '100.64.0.1', lanAddress: '192.168.1.5' }],
          access: [],
        },
        /taken/,
      ],
      [
        {
          ...VIRTUAL_DEVICES,
          access: [],
          virtualDevices: [
            { meshAddress: '100.64.7.1', lanAddress: '192.168.1.5' },
            { meshAddress: '100.64.7.2', lanAddress: '192.168.1.5' },
          ],
        },
        /already a virtual device/,
      ],
      [
        { ...ROUTES_MASQ, access: [{ peer: '100.64.0.2', destination: '172.16.0.0/12', allow: [{}] }] },
        /inside a route/,
      ],
      [
        { ...ROUTES_MASQ, access: [{ peer: '100.64.0.2', destination: '100.64.7.1', allow: [{}] }] },
        /destination/,
      ],
      [
        { ...ROUTES_MASQ, access: [{ peer: '100.64.0.1', destination: '10.20.0.0/16', allow: [{}] }] },
        /this gateway/,
      ],
      [
        {
          ...ROUTES_MASQ,
          access: [{ peer: '100.64.0.2', destination: '10.20.0.0/16', allow: [{ proto: 'gre' }] }],
        },
        /access\[0\]\.allow/,
      ],
      [
        {
          ...ROUTES_MASQ,
          access: [
            { peer: '100.64.0.2', destination: '10.20.0.0/16', allow: [{}] },
            { peer: '100.64.0.2', destination: '10.20.0.0/16', allow: [] },
          ],
        },
        /twice/,
      ],
      [{ ...EMPTY_GATEWAY, exitNode: { wanInterface: 'eth0 ', peers: [] } }, /wanInterface/],
      [{ ...EMPTY_GATEWAY, exitNode: { wanInterface: 'eth0', peers: ['8.8.8.8'] } }, /exitNode.peers\[0\]/],
      [
        { ...EMPTY_GATEWAY, exitNode: { wanInterface: 'eth0', peers: [], excluded: ['10/8'] } },
        /exitNode.excluded\[0\]/,
      ],
      [
        { ...EMPTY_GATEWAY, exitNode: { wanInterface: 'eth0', peers: ['100.64.0.2', '100.64.0.2'] } },
        /twice/,
      ],
      [{ ...EMPTY_GATEWAY, access: 'all' }, /access must be an array/],
      [null, /must be an object/],
    ];
    for (const [policy, message] of cases) {
      expect(bad(policy)).toThrow(FirewallPolicyError);
      expect(bad(policy)).toThrow(message);
    }
  });
});
