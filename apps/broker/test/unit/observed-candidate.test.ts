import { withObservedCandidate } from '../../src/domain/observed-candidate';

describe('withObservedCandidate', () => {
  it('puts the observed address with the WireGuard port first', () => {
    expect(withObservedCandidate(['10.1.0.10:51820'], '192.0.2.11')).toEqual([
      '192.0.2.11:51820',
      '10.1.0.10:51820',
    ]);
  });
  it('unwraps IPv4-mapped IPv6 addresses', () => {
    expect(withObservedCandidate(['10.1.0.10:51821'], '::ffff:192.0.2.11')).toEqual([
      '192.0.2.11:51821',
      '10.1.0.10:51821',
    ]);
  });
  it('does not repeat an address the device already reports (a routed host)', () => {
    expect(withObservedCandidate(['203.0.113.34:51820'], '203.0.113.34')).toEqual(['203.0.113.34:51820']);
  });
  it('adds nothing without a reported port, for loopback, or without a remote address', () => {
    expect(withObservedCandidate([], '192.0.2.11')).toEqual([]);
    expect(withObservedCandidate(['10.0.0.2:1'], '127.0.0.1')).toEqual(['10.0.0.2:1']);
    expect(withObservedCandidate(['10.0.0.2:1'], undefined)).toEqual(['10.0.0.2:1']);
  });
  it('formats an IPv6 observer in brackets and keeps the list within the limit', () => {
    const many = Array.from({ length: 16 }, (_, i) => `10.0.0.${i + 1}:7`);
    const out = withObservedCandidate(many, '2001:db8::1');
    expect(out[0]).toBe('[2001:db8::1]:7');
    expect(out).toHaveLength(16);
  });
});
