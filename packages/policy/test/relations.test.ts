import { CompiledPolicy } from '@trellis/policy';
import fc from 'fast-check';
import { deviceView, openSet } from '../src/match';
import { PortSetFamily } from '../src/port-union';
import { mergeSpans, NOTHING, toAccessRules, union } from '../src/ports';
import { policyOf } from './support/compile-helpers';

// Many rules, so a pair's shared rules span several 32-bit words of the rule bitsets.
const selector = fc.constantFrom('*', 'tag:a', 'tag:b', 'tag:c', 'tag:d', 'cidr:x', 'cidr:y', 'dev-1');
const ports = fc.subarray(['tcp:22', 'tcp:20-30', 'tcp:31', 'udp:53', 'udp:1-100', 'icmp', 'tcp', '*'], {
  minLength: 1,
});
const rule = fc.record({
  src: fc.array(selector, { minLength: 1, maxLength: 2 }),
  dst: fc.array(selector, { minLength: 1, maxLength: 2 }),
  ports,
});
const file = fc.record({
  rules: fc.array(rule, { minLength: 30, maxLength: 100 }),
  associations: fc.subarray([['x', 'y']]),
});
const device = fc.record({
  id: fc.integer({ min: 0, max: 9 }).map((i) => `dev-${i}`),
  name: fc.integer({ min: 0, max: 3 }).map((i) => `dev-${i}`),
  address: fc.constantFrom('100.64.0.1', '100.64.1.9', '100.65.0.1', '100.100.0.1'),
  tags: fc.subarray(['tag:a', 'tag:b', 'tag:c', 'tag:d']),
});

describe('relations between classes', () => {
  test('with up to 100 rules, every pair matches the rule-by-rule union', () => {
    fc.assert(
      fc.property(file, fc.uniqueArray(device, { selector: (d) => d.id, maxLength: 10 }), (f, devices) => {
        const policy = policyOf({
          tagOwners: { 'tag:a': [], 'tag:b': [], 'tag:c': [], 'tag:d': [] },
          cidrs: { x: '100.64.0.0/24', y: '100.64.1.0/24' },
          ...f,
        });
        const compiled = new CompiledPolicy(policy, devices);
        for (const a of devices) {
          for (const b of devices) {
            if (a.id === b.id) continue;
            const expected = toAccessRules(openSet(policy, deviceView(policy, a), deviceView(policy, b)));
            const got = compiled.access(a.id, b.id);
            expect(got?.out ?? []).toEqual(expected);
            // The class-level answer is the same relation, shared.
            const shared = compiled.classAccess(compiled.classOf(a.id)!, compiled.classOf(b.id)!);
            expect(shared?.out.rules ?? []).toEqual(expected);
          }
        }
        // Interned: equal rules, one relation.
        const seen = new Map<string, number>();
        for (const a of devices) {
          for (const b of devices) {
            const r = compiled.classAccess(compiled.classOf(a.id)!, compiled.classOf(b.id)!);
            if (!r) continue;
            for (const rel of [r.in, r.out]) {
              expect(seen.get(rel.json) ?? rel.id).toBe(rel.id);
              seen.set(rel.json, rel.id);
            }
          }
        }
      }),
      { numRuns: 300, seed: 3 },
    );
  });
});

describe('PortSetFamily', () => {
  const span = fc
    .tuple(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 12 }))
    .map(([a, n]) => [a, Math.min(a + n, 65535)] as [number, number]);
  const set = fc.record({
    other: fc.boolean(),
    icmp: fc.boolean(),
    tcp: fc.array(span, { maxLength: 4 }).map(mergeSpans),
    udp: fc.oneof(
      fc.constant([[1, 65535]] as [number, number][]),
      fc.array(span, { maxLength: 3 }).map(mergeSpans),
    ),
  });

  test('a union of members equals folding the two-set union over them', () => {
    fc.assert(
      fc.property(
        fc.array(set, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (sets, picks) => {
          const family = new PortSetFamily(sets);
          const members = [...new Set(picks.map((i) => i % sets.length))];
          // Asked twice: the scratch state is clean between unions.
          for (let round = 0; round < 2; round++) {
            expect(family.union(members)).toEqual(members.reduce((acc, m) => union(acc, sets[m]!), NOTHING));
          }
        },
      ),
      { numRuns: 1000, seed: 5 },
    );
  });
});
