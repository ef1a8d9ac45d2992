import { effectiveUsageLimit, parseDuration, setupKeyState } from '../../src/domain/setup-key-rules';

const now = new Date('2026-01-01T00:00:00Z');
const base = { reusable: false, usageLimit: null, usedCount: 0, expiresAt: null, revokedAt: null };

describe('setup key validity', () => {
  it('a fresh one-off key is valid once, then exhausted', () => {
    expect(setupKeyState(base, now)).toBe('valid');
    expect(setupKeyState({ ...base, usedCount: 1 }, now)).toBe('exhausted');
  });

  it('a reusable key without limit stays valid', () => {
    expect(setupKeyState({ ...base, reusable: true, usedCount: 10_000 }, now)).toBe('valid');
  });

  it('honours an explicit usage limit', () => {
    const k = { ...base, reusable: true, usageLimit: 3 };
    expect(setupKeyState({ ...k, usedCount: 2 }, now)).toBe('valid');
    expect(setupKeyState({ ...k, usedCount: 3 }, now)).toBe('exhausted');
  });

  it('expires at its expiry time', () => {
    expect(setupKeyState({ ...base, expiresAt: new Date(now.getTime() + 1) }, now)).toBe('valid');
    expect(setupKeyState({ ...base, expiresAt: now }, now)).toBe('expired');
  });

  it('revocation wins over everything', () => {
    expect(setupKeyState({ ...base, reusable: true, revokedAt: now, expiresAt: now }, now)).toBe('revoked');
  });

  it('defaults the usage limit by kind', () => {
    expect(effectiveUsageLimit(false, undefined)).toBe(1);
    expect(effectiveUsageLimit(true, undefined)).toBeNull();
    expect(effectiveUsageLimit(true, 5)).toBe(5);
  });

  it('parses durations', () => {
    expect(parseDuration('24h')).toBe(86400);
    expect(parseDuration('30m')).toBe(1800);
    expect(parseDuration('7d')).toBe(7 * 86400);
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('0h')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
  });
});
