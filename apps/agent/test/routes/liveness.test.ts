import { DEAD_AFTER_MS, GatewayLiveness } from '../../src/routes/gateway-liveness';

describe('GatewayLiveness', () => {
  const sample = (rxBytes: number, txBytes: number) => [{ peerId: 'g', rxBytes, txBytes }];

  it('counts a new or idle gateway as alive', () => {
    const l = new GatewayLiveness();
    expect(l.alive('g', 0)).toBe(true);
    l.observe(0, sample(10, 10));
    l.observe(60_000, sample(10, 10));
    expect(l.alive('g', 60_000)).toBe(true);
  });

  it('proves a gateway dead after sending to it for DEAD_AFTER_MS without an answer', () => {
    const l = new GatewayLiveness();
    l.observe(0, sample(100, 100));
    l.observe(1000, sample(132, 132)); // keepalives both ways
    l.observe(2000, sample(132, 164)); // ours went out, none back yet
    expect(l.alive('g', 2000 + DEAD_AFTER_MS - 1)).toBe(true);
    l.observe(4000, sample(132, 196));
    expect(l.alive('g', 2000 + DEAD_AFTER_MS)).toBe(false);
    expect(l.proven('g', 7000)).toBe(false);
    // It answers again: alive and proven at once, so traffic may go back to it.
    l.observe(8000, sample(164, 228));
    expect(l.alive('g', 8000)).toBe(true);
    expect(l.proven('g', 8000)).toBe(true);
    expect(l.verdicts(8000)).toBe('g:alive+');
    expect(l.proven('g', 8000 + DEAD_AFTER_MS)).toBe(false);
  });

  it('takes counters that went down (the peer was re-added) as a fresh start', () => {
    const l = new GatewayLiveness();
    l.observe(0, sample(500, 500));
    l.observe(1000, sample(500, 600));
    l.observe(2000, sample(0, 32));
    expect(l.alive('g', 1000 + DEAD_AFTER_MS)).toBe(true);
  });

  it('forgets peers no longer sampled', () => {
    const l = new GatewayLiveness();
    l.observe(0, sample(1, 1));
    l.observe(1000, sample(1, 2));
    l.observe(2000, []);
    expect(l.alive('g', 10_000)).toBe(true);
    expect(l.verdicts(10_000)).toBe('');
  });
});
