import { networkOf, ResponseLimiter } from '../src/response-limiter';

describe('ResponseLimiter', () => {
  const limits = { perSecond: 10, burst: 20, slip: 2, maxSources: 3 };

  it('lets a burst through, then the rate; past it every second response slips and the rest drop', () => {
    const l = new ResponseLimiter(limits);
    const verdicts = Array.from({ length: 26 }, () => l.verdict('198.51.100.9', 0));
    expect(verdicts.slice(0, 20).every((v) => v === 'send')).toBe(true);
    expect(verdicts.slice(20)).toEqual(['drop', 'slip', 'drop', 'slip', 'drop', 'slip']);
    // 100 ms later: one more token (10/s).
    expect(l.verdict('198.51.100.9', 100)).toBe('send');
    expect(l.verdict('198.51.100.9', 100)).toBe('drop');
    // A quiet second refills ten.
    const after = Array.from({ length: 11 }, () => l.verdict('198.51.100.9', 1100));
    expect(after.filter((v) => v === 'send')).toHaveLength(10);
  });

  it('counts a /24 (IPv4) or a /56 (IPv6) as one source; other networks have their own', () => {
    const l = new ResponseLimiter({ ...limits, burst: 1, perSecond: 0.001 });
    expect(l.verdict('198.51.100.9', 0)).toBe('send');
    expect(l.verdict('198.51.100.200', 0)).not.toBe('send');
    expect(l.verdict('::ffff:198.51.100.3', 0)).not.toBe('send');
    expect(l.verdict('198.51.101.9', 0)).toBe('send');
    expect(networkOf('2001:db8:1:2ab::9')).toBe(networkOf('2001:db8:1:2ff:ffff::1'));
    expect(networkOf('2001:db8:1:2ab::9')).not.toBe(networkOf('2001:db8:1:3ab::9'));
    expect(networkOf('::1')).toBe('0000:0000:0000:0000::/56');
  });

  it('tracks at most maxSources networks, forgetting the least recently heard', () => {
    const l = new ResponseLimiter({ ...limits, burst: 1, perSecond: 0.001 });
    for (const a of ['10.0.1.1', '10.0.2.1', '10.0.3.1']) expect(l.verdict(a, 0)).toBe('send');
    expect(l.verdict('10.0.1.1', 0)).not.toBe('send'); // 10.0.1 is now the most recent
    expect(l.verdict('10.0.4.1', 0)).toBe('send'); // evicts 10.0.2
    expect(l.trackedSources).toBe(3);
    expect(l.verdict('10.0.2.1', 0)).toBe('send'); // forgotten: a fresh bucket
    expect(l.verdict('10.0.1.1', 0)).not.toBe('send');
  });
});
