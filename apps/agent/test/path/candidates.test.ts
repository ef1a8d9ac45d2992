import { candidatesFromEndpoints, kindOfEndpoint, mergeCandidates, orderCandidates } from '../../src/path';

describe('path candidates', () => {
  it('labels on-link netmap endpoints as LAN and keeps the broker order as priority', () => {
    expect(candidatesFromEndpoints(['192.0.2.1:5', '10.1.0.7:51820'], ['10.1.0.10/24'])).toEqual([
      { endpoint: '192.0.2.1:5', kind: 'observed', priority: 2 },
      { endpoint: '10.1.0.7:51820', kind: 'lan', priority: 1 },
    ]);
  });

  it('orders LAN first, then by priority, ties in list order', () => {
    const out = orderCandidates([
      { endpoint: '192.0.2.1:1', kind: 'reflexive', priority: 5 },
      { endpoint: '192.0.2.2:1', kind: 'portmapped', priority: 9 },
      { endpoint: '10.0.0.1:1', kind: 'lan', priority: 1 },
      { endpoint: '192.0.2.3:1', kind: 'observed', priority: 5 },
    ]);
    expect(out.map((c) => c.endpoint)).toEqual(['10.0.0.1:1', '192.0.2.2:1', '192.0.2.1:1', '192.0.2.3:1']);
  });

  it('merges punch and netmap candidates: punch kinds win, netmap-only ones come after', () => {
    const out = mergeCandidates(
      [{ endpoint: '192.0.2.1:1', kind: 'reflexive', priority: 5 }],
      [
        { endpoint: '192.0.2.1:1', kind: 'observed', priority: 2 },
        { endpoint: '198.51.100.1:1', kind: 'observed', priority: 1 },
        { endpoint: '10.0.0.1:1', kind: 'lan', priority: 0 },
      ],
    );
    expect(out.map((c) => [c.endpoint, c.kind])).toEqual([
      ['10.0.0.1:1', 'lan'],
      ['192.0.2.1:1', 'reflexive'],
      ['198.51.100.1:1', 'observed'],
    ]);
  });

  it('classifies an endpoint WireGuard roamed to', () => {
    expect(
      kindOfEndpoint('192.0.2.1:1', [{ endpoint: '192.0.2.1:1', kind: 'portmapped', priority: 1 }]),
    ).toBe('portmapped');
    expect(kindOfEndpoint('172.20.0.5:9', [])).toBe('lan');
    expect(kindOfEndpoint('100.70.0.5:9', [])).toBe('observed');
  });
});
