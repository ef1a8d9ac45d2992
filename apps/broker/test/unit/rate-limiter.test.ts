import { RateLimiter } from '../../src/security/rate-limiter';

describe('RateLimiter', () => {
  it('allows `limit` events per key within the window, each key on its own, and says how long to wait', () => {
    let now = 0;
    const limiter = new RateLimiter(3, 60_000, () => now);
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]);
    expect(limiter.take('b')).toBe(true);
    now = 10_000;
    // The oldest of the three leaves the window at 60 s.
    expect(limiter.retryAfterMs('a')).toBe(50_000);
    expect(limiter.retryAfterMs('b')).toBe(0);
    now = 60_000;
    // All three were at 0: the window is empty again.
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([true, true, true, false]);
  });

  it('a refused event does not count: a client hammering the limit is let in once the window moves on', () => {
    let now = 0;
    const limiter = new RateLimiter(1, 1_000, () => now);
    expect(limiter.take('a')).toBe(true);
    for (now = 100; now < 1_000; now += 100) expect(limiter.take('a')).toBe(false);
    now = 1_000;
    expect(limiter.take('a')).toBe(true);
  });

  it('forgets idle keys', () => {
    let now = 0;
    const limiter = new RateLimiter(1, 1_000, () => now);
    for (let i = 0; i < 1_000; i++) limiter.take(`k${i}`);
    now = 5_000;
    limiter.take('fresh');
    expect((limiter as unknown as { events: Map<string, number[]> }).events.size).toBe(1);
  });
});
