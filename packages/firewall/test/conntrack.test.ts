import { normalizeInbound, parseConntrackList, planCut } from '../src';
import { AFTER, BEFORE } from './support/fixtures';

describe('conntrack cutting', () => {
  it('parses the original-direction tuple of plain and extended listings', () => {
    const text = [
      'ipv4     2 tcp      6 299 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=41000 dport=8022 src=100.64.0.1 dst=100.64.0.2 sport=8022 dport=41000 [ASSURED] mark=0 use=1',
      'icmp     1 29 src=100.64.0.2 dst=100.64.0.1 type=8 code=0 id=7 src=100.64.0.1 dst=100.64.0.2 type=0 code=0 id=7 mark=0 use=1',
      'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.',
    ].join('\n');
    expect(parseConntrackList(text)).toEqual([
      { proto: 'tcp', src: '100.64.0.2', dst: '100.64.0.1', sport: 41000, dport: 8022 },
      { proto: 'icmp', src: '100.64.0.2', dst: '100.64.0.1' },
    ]);
  });

  it('plans bulk deletes for protocols a peer lost entirely, audits partial tcp losses, ignores udp', () => {
    expect(planCut(normalizeInbound(BEFORE), normalizeInbound(AFTER))).toEqual({
      bulk: [
        { peer: '100.64.0.2', proto: 'tcp' },
        { peer: '100.64.0.10', proto: 'tcp' },
      ],
      audit: ['100.64.0.3'],
    });
  });

  it('plans nothing for a change that only opens more', () => {
    expect(
      planCut(
        normalizeInbound(AFTER),
        normalizeInbound({ ...AFTER, peers: [...AFTER.peers, ...BEFORE.peers.slice(2, 4)] }),
      ),
    ).toEqual({
      bulk: [],
      audit: [],
    });
  });

  it('audits every flow when the previous policy is unknown or the address changed', () => {
    expect(planCut(undefined, normalizeInbound(AFTER)).audit).toBe('all');
    expect(
      planCut(normalizeInbound(BEFORE), normalizeInbound({ ...AFTER, selfAddress: '100.64.0.99' })).audit,
    ).toBe('all');
  });

  it('a peer removed entirely loses its tcp and icmp flows', () => {
    const before = normalizeInbound(BEFORE);
    const after = normalizeInbound({
      ...BEFORE,
      peers: BEFORE.peers.filter((p) => p.address !== '100.64.0.3'),
    });
    expect(planCut(before, after)).toEqual({
      bulk: [
        { peer: '100.64.0.3', proto: 'tcp' },
        { peer: '100.64.0.3', proto: 'icmp' },
      ],
      audit: [],
    });
  });
});
