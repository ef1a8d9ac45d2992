import {
  candidatesFromEndpoints,
  kindOfEndpoint,
  mergeCandidates,
  onLinkCandidates,
  orderCandidates,
} from '../../src/path';

describe('path candidates', () => {
  it('labels on-link netmap endpoints as LAN and keeps the broker order as priority', () => {
    expect(candidatesFromEndpoints(['192.0.2.1:5', '10.1.0.7:51820'], ['10.1.0.10/24'])).toEqual([
      { endpoint: '192.0.2.1:5', kind: 'observed', priority: 2 },
      { endpoint: '10.1.0.7:51820', kind: 'lan', priority: 1 },
    ]);
  });

  it("keeps a peer's LAN candidates only on our links: where we are decides, so it changes when we move", () => {
    const peer = [
      { endpoint: '10.2.0.10:51820', kind: 'lan' as const, priority: 4000 },
      { endpoint: '[fd00::10]:51820', kind: 'lan' as const, priority: 3999 },
      { endpoint: '198.51.100.2:51820', kind: 'reflexive' as const, priority: 2000 },
    ];
    const at = (subnets: string[]) => onLinkCandidates(peer, subnets).map((c) => c.endpoint);
    // At a café (another private network): only the public address.
    expect(at(['10.1.0.10/24'])).toEqual(['198.51.100.2:51820']);
    // On the peer's own LAN: its LAN address too.
    expect(at(['10.2.0.11/24'])).toEqual(['10.2.0.10:51820', '198.51.100.2:51820']);
    expect(at([])).toEqual(['198.51.100.2:51820']);
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
