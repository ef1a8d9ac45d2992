import { normalizeInbound } from '../src';

// An exit node's clients may ask its DNS stub: udp and tcp 53 on its own address, merged with
// what the policy opens, and nothing for peers that are not its clients.

describe('InboundPolicy.dnsFrom', () => {
  it('adds udp and tcp 53 for the listed peers only, merged with their own rules', () => {
    const p = normalizeInbound({
      interfaceName: 'trellis0',
      selfAddress: '100.64.0.1',
      peers: [
        { address: '100.64.0.2', allow: [] },
        { address: '100.64.0.3', allow: [{ proto: 'tcp', ports: [[22, 22]] }] },
        { address: '100.64.0.4', allow: [{ proto: 'tcp', ports: [[54, 60]] }] },
        { address: '100.64.0.5', allow: [{}] },
      ],
      dnsFrom: ['100.64.0.2', '100.64.0.4', '100.64.0.5'],
    });
    expect(p.peers).toEqual([
      { address: '100.64.0.2', all: false, icmp: false, tcp: [[53, 53]], udp: [[53, 53]] },
      { address: '100.64.0.3', all: false, icmp: false, tcp: [[22, 22]], udp: [] },
      { address: '100.64.0.4', all: false, icmp: false, tcp: [[53, 60]], udp: [[53, 53]] },
      { address: '100.64.0.5', all: true, icmp: false, tcp: [], udp: [] },
    ]);
  });
});
