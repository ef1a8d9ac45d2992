import { MAX_GATEWAY_ACCESS, normalizeGateway } from '@trellis/firewall';
import { ALLOW_ALL, type HostedVirtual } from '@trellis/proto';
import { NO_PLAN, planGatewayPolicy } from '../../src/gateway/gateway-policy';
import { id } from '../virtual/fixtures';

const vd = (n: number, address: string, lanAddress: string, peers: string[]): HostedVirtual => ({
  id: id(n),
  name: `vd${n}`,
  address,
  lanAddress,
  access: [{ peers, in: ALLOW_ALL }],
});

const base = {
  meshInterface: 'trellis0',
  selfAddress: '100.64.0.1',
  approved: ['192.168.1.0/24'],
  masquerade: true,
  wanInterface: null,
};

describe('planGatewayPolicy: what the firewall would refuse is left out, never sent', () => {
  it("admits virtual devices in address order while the access entries fit the firewall's limit", () => {
    // Peer k is 100.64.<k / 250 + 1>.<k % 250 + 2>.
    const addressOf = (peer: string) => {
      const k = Number(peer.slice(-8));
      return `100.64.${Math.floor(k / 250) + 1}.${(k % 250) + 2}`;
    };
    const peerIds = (from: number, count: number) => Array.from({ length: count }, (_, k) => id(from + k));
    const half = MAX_GATEWAY_ACCESS / 2;
    // One route entry, then 100.64.200.1 takes half the budget; 100.64.200.2 does not fit after it,
    // and 100.64.200.3 (one peer) does not jump the queue.
    const virtual = [
      vd(3, '100.64.200.3', '192.168.1.3', peerIds(0, 1)),
      vd(2, '100.64.200.2', '192.168.1.2', peerIds(0, half)),
      vd(1, '100.64.200.1', '192.168.1.1', peerIds(0, half)),
    ];
    const { policy, virtualSkipped } = planGatewayPolicy({
      ...base,
      plan: {
        ...NO_PLAN,
        lanInterface: 'eth1',
        served: ['192.168.1.0/24'],
        virtualServed: virtual.map((v) => v.lanAddress),
      },
      peers: [{ address: '100.64.0.2', routesIn: [{ prefix: '192.168.1.0/24', rules: ALLOW_ALL }] }],
      virtual,
      addressOf,
    });
    expect(policy?.virtualDevices).toEqual([{ meshAddress: '100.64.200.1', lanAddress: '192.168.1.1' }]);
    expect(policy?.access).toHaveLength(1 + half);
    expect(policy?.lan?.routes).toEqual(['192.168.1.0/24']);
    expect(virtualSkipped).toEqual([
      { id: id(2), name: 'vd2', reason: 'too many peers for the forwarding rules' },
      { id: id(3), name: 'vd3', reason: 'too many peers for the forwarding rules' },
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });

  it("leaves out a mesh address that is the gateway's or a peer's, and a LAN address that is its own", () => {
    const virtual = [
      vd(1, '100.64.0.1', '192.168.1.11', [id(9)]),
      vd(2, '100.64.0.2', '192.168.1.12', [id(9)]),
      vd(3, '100.64.0.3', '192.168.1.254', [id(9)]),
      vd(4, '100.64.0.4', '192.168.1.14', [id(2), id(9)]),
    ];
    const { policy, virtualSkipped } = planGatewayPolicy({
      ...base,
      approved: [],
      plan: { ...NO_PLAN, lanInterface: 'eth1', virtualServed: virtual.map((v) => v.lanAddress) },
      peers: [
        { address: '100.64.0.2', routesIn: [] },
        { address: '100.64.0.9', routesIn: [] },
      ],
      virtual,
      addressOf: (p) => (p === id(2) ? '100.64.0.2' : p === id(9) ? '100.64.0.9' : undefined),
      localAddresses: ['127.0.0.0/8', '192.168.1.254/32'],
    });
    expect(virtualSkipped.map((s) => [s.name, s.reason])).toEqual([
      ['vd1', "its mesh address 100.64.0.1 is this gateway's own"],
      ['vd2', "its mesh address 100.64.0.2 is also a peer's"],
      ['vd3', "its LAN address 192.168.1.254 is this gateway's own (it would expose the gateway's services)"],
    ]);
    // The peer whose address vd2 repeats keeps its access to vd4: vd2 is not in the policy.
    expect(policy?.virtualDevices).toEqual([{ meshAddress: '100.64.0.4', lanAddress: '192.168.1.14' }]);
    expect(policy?.access.map((a) => `${a.peer} ${a.destination}`)).toEqual([
      '100.64.0.2 100.64.0.4',
      '100.64.0.9 100.64.0.4',
    ]);
    expect(() => normalizeGateway(policy!)).not.toThrow();
  });
});
