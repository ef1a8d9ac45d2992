import { LoginThrottle } from '../../src/security/login-throttle';

describe('LoginThrottle', () => {
  it('lets 5 failures through, then doubles the wait after each failure, up to 15 minutes', () => {
    let now = 0;
    const t = new LoginThrottle(() => now);
    for (let i = 0; i < 5; i++) {
      expect(t.waitMs('a')).toBe(0);
      t.failed('a');
    }
    expect(t.waitMs('a')).toBe(1_000);
    now += 1_000;
    expect(t.waitMs('a')).toBe(0);
    t.failed('a');
    expect(t.waitMs('a')).toBe(2_000);
    now += 2_000;
    t.failed('a');
    expect(t.waitMs('a')).toBe(4_000);
    for (let i = 0; i < 20; i++) t.failed('a');
    expect(t.waitMs('a')).toBe(15 * 60_000);
    // Another key is not held back.
    expect(t.waitMs('b')).toBe(0);
  });

  it('a success clears the key; an hour without failures forgets it', () => {
    let now = 0;
    const t = new LoginThrottle(() => now);
    for (let i = 0; i < 8; i++) t.failed('a');
    t.succeeded('a');
    expect(t.waitMs('a')).toBe(0);
    for (let i = 0; i < 8; i++) t.failed('b');
    now += 60 * 60_000 + 1;
    expect(t.waitMs('b')).toBe(0);
    t.failed('b');
    expect(t.waitMs('b')).toBe(0);
  });
});
