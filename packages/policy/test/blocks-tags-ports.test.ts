import {
  cidrBlock,
  formatAccessRules,
  fromAccessRules,
  innermostBlock,
  mayApplyTag,
  toAccessRules,
} from '@trellis/policy';
import fc from 'fast-check';
import { difference, mergeSpans, type PortSet, parsePortSpec, union } from '../src/ports';
import { policyOf } from './support/compile-helpers';

describe('blocks', () => {
  const p = policyOf({
    cidrs: {
      'site-a-cams': '100.64.8.0/24',
      'site-a': '100.64.0.0/16',
      'site-a-cams-door': '100.64.8.128/25',
      'one-host': '100.64.8.200/32',
      'site-b': '100.65.0.0/16',
    },
  });
  test('cidrBlock names a block', () => {
    expect(cidrBlock(p, 'site-a-cams')).toBe('100.64.8.0/24');
    expect(cidrBlock(p, 'nope')).toBeUndefined();
  });
  test('innermostBlock finds the narrowest, whatever the order of the file', () => {
    expect(innermostBlock(p, '100.64.8.200')).toBe('one-host');
    expect(innermostBlock(p, '100.64.8.201')).toBe('site-a-cams-door');
    expect(innermostBlock(p, '100.64.8.1')).toBe('site-a-cams');
    expect(innermostBlock(p, '100.64.9.1')).toBe('site-a');
    expect(innermostBlock(p, '100.65.255.255')).toBe('site-b');
    expect(innermostBlock(p, '100.66.0.1')).toBeUndefined();
    expect(innermostBlock(p, 'not an address')).toBeUndefined();
  });
  test('the tree of blocks', () => {
    const parent = (name: string) => {
      const b = p.blocks.find((x) => x.name === name)!;
      return b.parent === null ? null : p.blocks[b.parent]!.name;
    };
    expect(parent('site-a')).toBeNull();
    expect(parent('site-a-cams')).toBe('site-a');
    expect(parent('site-a-cams-door')).toBe('site-a-cams');
    expect(parent('one-host')).toBe('site-a-cams-door');
  });
});

describe('mayApplyTag', () => {
  const p = policyOf({
    groups: {
      'group:ops': ['user:Carol@acme.com', 'group:leads', 'tag:cams', 'laptop'],
      'group:leads': ['user:dave@acme.com'],
    },
    tagOwners: { 'tag:cams': ['group:ops'], 'tag:db': ['user:bob@acme.com'], 'tag:free': [] },
  });
  const as = (email: string, role: 'owner' | 'admin' | 'member' = 'member') => ({ email, role });
  test('the owner may apply any declared tag, never an undeclared one', () => {
    expect(mayApplyTag(p, as('root@acme.com', 'owner'), 'tag:free')).toBe(true);
    expect(mayApplyTag(p, as('root@acme.com', 'owner'), 'tag:nope')).toBe(false);
  });
  test('others only as listed owners, directly or through (nested) groups', () => {
    expect(mayApplyTag(p, as('bob@acme.com'), 'tag:db')).toBe(true);
    expect(mayApplyTag(p, as('BOB@acme.com'), 'tag:db')).toBe(true);
    expect(mayApplyTag(p, as('bob@acme.com'), 'tag:cams')).toBe(false);
    expect(mayApplyTag(p, as('carol@acme.com'), 'tag:cams')).toBe(true);
    expect(mayApplyTag(p, as('dave@acme.com'), 'tag:cams')).toBe(true);
    expect(mayApplyTag(p, as('eve@acme.com', 'admin'), 'tag:cams')).toBe(false);
    expect(mayApplyTag(p, as('eve@acme.com', 'admin'), 'tag:free')).toBe(false);
    expect(mayApplyTag(p, as('laptop'), 'tag:cams')).toBe(false);
  });
});

describe('ports', () => {
  test('formatAccessRules', () => {
    expect(formatAccessRules([{}])).toBe('all');
    expect(formatAccessRules([])).toBe('none');
    expect(formatAccessRules([{ proto: 'tcp' }])).toBe('tcp');
    expect(
      formatAccessRules([
        { proto: 'icmp' },
        { proto: 'udp', ports: [[53, 53]] },
        {
          proto: 'tcp',
          ports: [
            [80, 443],
            [22, 22],
          ],
        },
      ]),
    ).toBe('tcp 22,80-443; udp 53; icmp');
    expect(
      formatAccessRules([
        { proto: 'tcp', ports: [[22, 22]] },
        { proto: 'tcp', ports: [[23, 25]] },
      ]),
    ).toBe('tcp 22-25');
  });

  const spanArb = fc
    .tuple(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 30 }))
    .map(([a, n]) => [a, Math.min(65535, a + n)] as [number, number]);
  const setArb = fc.record({
    other: fc.boolean(),
    tcp: fc.array(spanArb, { maxLength: 4 }),
    udp: fc.array(spanArb, { maxLength: 4 }),
    icmp: fc.boolean(),
  });
  /** Sets as the engine keeps them: spans merged. */
  const norm = (s: {
    other: boolean;
    tcp: [number, number][];
    udp: [number, number][];
    icmp: boolean;
  }): PortSet => ({
    ...s,
    tcp: mergeSpans(s.tcp),
    udp: mergeSpans(s.udp),
  });
  const has = (s: PortSet, proto: 'tcp' | 'udp', port: number) =>
    s[proto].some(([a, b]) => a <= port && port <= b);

  test('union and difference agree with port-by-port sets', () => {
    fc.assert(
      fc.property(setArb, setArb, (x, y) => {
        const a = norm(x);
        const b = norm(y);
        const u = union(a, b);
        const d = difference(a, b);
        for (let port = 1; port <= 240; port++) {
          for (const proto of ['tcp', 'udp'] as const) {
            expect(has(u, proto, port)).toBe(has(a, proto, port) || has(b, proto, port));
            expect(has(d, proto, port)).toBe(has(a, proto, port) && !has(b, proto, port));
          }
        }
        expect(u.icmp).toBe(a.icmp || b.icmp);
        expect(d.other).toBe(a.other && !b.other);
      }),
      { seed: 3 },
    );
  });

  test('canonical rules: equal sets give equal JSON, and they round trip', () => {
    fc.assert(
      fc.property(setArb, (x) => {
        const rules = toAccessRules(norm(x));
        expect(toAccessRules(fromAccessRules(rules))).toEqual(rules);
        const shuffled = [...rules].reverse();
        expect(JSON.stringify(toAccessRules(fromAccessRules(shuffled)))).toBe(JSON.stringify(rules));
        expect(rules.length).toBeLessThanOrEqual(4);
      }),
      { seed: 5 },
    );
  });

  test('parsePortSpec', () => {
    expect(parsePortSpec('tcp:22')).toEqual({ other: false, tcp: [[22, 22]], udp: [], icmp: false });
    expect(parsePortSpec('udp:1-65535')).toEqual({ other: false, tcp: [], udp: [[1, 65535]], icmp: false });
    expect(parsePortSpec('tcp:00022')).toEqual({ other: false, tcp: [[22, 22]], udp: [], icmp: false });
    expect(typeof parsePortSpec('tcp:22 ')).toBe('string');
    expect(typeof parsePortSpec('tcp:-22')).toBe('string');
  });
});
