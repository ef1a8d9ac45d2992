import {
  describeInbound,
  FirewallPolicyError,
  type InboundPolicy,
  mergeSpans,
  normalizeInbound,
  selectFirewallBackend,
} from '../src';
import { BEFORE, SELF } from './support/fixtures';

const base: InboundPolicy = { interfaceName: 'wg-a1', selfAddress: SELF, peers: [] };

describe('normalizeInbound', () => {
  it('merges spans, lets allow-all win, sorts peers numerically and leaves out peers allowed nothing', () => {
    const p = normalizeInbound(BEFORE);
    expect(p.peers.map((x) => x.address)).toEqual(['100.64.0.2', '100.64.0.3', '100.64.0.4', '100.64.0.10']);
    expect(p.peers[1]).toEqual({
      address: '100.64.0.3',
      all: false,
      icmp: true,
      tcp: [
        [22, 22],
        [80, 100],
      ],
      udp: [[53, 53]],
    });
    expect(p.peers[3]!.tcp).toEqual([[0, 65535]]);
    expect(
      normalizeInbound({ ...base, peers: [{ address: '100.64.0.9', allow: [{ proto: 'tcp' }, {}] }] }).peers,
    ).toEqual([{ address: '100.64.0.9', all: true, icmp: false, tcp: [], udp: [] }]);
  });

  it('merges adjacent spans', () => {
    expect(
      mergeSpans([
        [10, 20],
        [21, 30],
        [1, 2],
        [40, 50],
        [45, 46],
      ]),
    ).toEqual([
      [1, 2],
      [10, 30],
      [40, 50],
    ]);
  });

  it.each([
    ['an interface name with a quote', { ...base, interfaceName: 'wg0" accept' }, /interfaceName/],
    ['an interface name with a newline', { ...base, interfaceName: 'wg0\nflush' }, /interfaceName/],
    ['a 16-character interface name', { ...base, interfaceName: 'a234567890123456' }, /interfaceName/],
    ['an empty interface name', { ...base, interfaceName: '' }, /interfaceName/],
    ['a self address outside the overlay', { ...base, selfAddress: '10.0.0.1' }, /selfAddress/],
    ['a self address with trailing text', { ...base, selfAddress: '100.64.0.1 }' }, /selfAddress/],
    [
      'a peer outside the overlay',
      { ...base, peers: [{ address: '100.128.0.1', allow: [{}] }] },
      /peers\[0\]\.address/,
    ],
    [
      'a peer in CIDR form',
      { ...base, peers: [{ address: '100.64.0.0/10', allow: [{}] }] },
      /peers\[0\]\.address/,
    ],
    ['a peer that is this device', { ...base, peers: [{ address: SELF, allow: [{}] }] }, /this device/],
    [
      'a peer listed twice',
      {
        ...base,
        peers: [
          { address: '100.64.0.2', allow: [] },
          { address: '100.64.0.2', allow: [{}] },
        ],
      },
      /listed twice/,
    ],
    [
      'port 0',
      { ...base, peers: [{ address: '100.64.0.2', allow: [{ proto: 'tcp', ports: [[0, 1]] }] }] },
      /allow/,
    ],
    [
      'a reversed span',
      { ...base, peers: [{ address: '100.64.0.2', allow: [{ proto: 'udp', ports: [[9, 8]] }] }] },
      /allow/,
    ],
    [
      'icmp with ports',
      { ...base, peers: [{ address: '100.64.0.2', allow: [{ proto: 'icmp', ports: [[1, 1]] }] }] },
      /allow/,
    ],
    [
      'an unknown protocol',
      { ...base, peers: [{ address: '100.64.0.2', allow: [{ proto: 'sctp' }] }] },
      /allow/,
    ],
    ['an unknown key', { ...base, peers: [{ address: '100.64.0.2', allow: [{ action: 'drop' }] }] }, /allow/],
  ])('refuses %s', (_what, policy, message) => {
    expect(() => normalizeInbound(policy as unknown as InboundPolicy)).toThrow(FirewallPolicyError);
    expect(() => normalizeInbound(policy as unknown as InboundPolicy)).toThrow(message);
  });

  it('describes a policy one line per peer', () => {
    expect(describeInbound(BEFORE)).toEqual([
      'trellis0 100.64.0.1: 4 peer(s) may open something',
      '100.64.0.2 everything',
      '100.64.0.3 tcp 22,80-100 udp 53 icmp echo',
      '100.64.0.4 tcp 22,80-100 udp 53',
      '100.64.0.10 tcp all ports',
    ]);
  });
});

describe('selectFirewallBackend', () => {
  it('picks one backend per platform', () => {
    expect(selectFirewallBackend('linux').name).toBe('nftables');
    expect(selectFirewallBackend('darwin').name).toBe('pf');
    expect(() => selectFirewallBackend('win32')).toThrow(
      /no WFP engine given: the caller supplies the native engine/,
    );
    expect(() => selectFirewallBackend('aix')).toThrow(/no firewall backend/);
  });
});
