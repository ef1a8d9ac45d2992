import { toDnsLabel, uniqueLabel } from '../../src/domain/names';

describe('device names', () => {
  it.each([
    ['Laptop', 'laptop'],
    ['My Laptop.local', 'my-laptop'],
    ['--weird__name--', 'weird-name'],
    ['ÄÖÜ', 'device'],
    ['db-01', 'db-01'],
    ['a'.repeat(80), 'a'.repeat(63)],
  ])('%s becomes the DNS label %s', (input, label) => {
    expect(toDnsLabel(input)).toBe(label);
    expect(label).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
  });

  it('makes names unique in the account: laptop, laptop-2, laptop-3', () => {
    const taken = new Set<string>();
    const next = () => {
      const n = uniqueLabel('laptop', (l) => taken.has(l));
      taken.add(n);
      return n;
    };
    expect([next(), next(), next()]).toEqual(['laptop', 'laptop-2', 'laptop-3']);
  });

  it('keeps a suffixed long name within 63 characters', () => {
    const base = 'x'.repeat(63);
    const n = uniqueLabel(base, (l) => l === base);
    expect(n).toHaveLength(63);
    expect(n.endsWith('-2')).toBe(true);
  });
});
