import { CompiledPolicy, type PolicyDevice, planPolicy, RuleChange } from '@trellis/policy';
import fc from 'fast-check';
import { deviceView, openSet } from '../src/match';
import { toAccessRules } from '../src/ports';
import { selectorArb } from './support/arbitraries';
import { policyOf, snapshot } from './support/compile-helpers';

const FRAME = {
  groups: { 'group:eng': ['user:alice@acme.com', 'laptop-1'], 'group:ops': ['tag:ops'] },
  tagOwners: { 'tag:db': [], 'tag:ops': [], 'tag:web': [] },
  cidrs: { 'site-a': '100.64.0.0/16', 'site-a-cams': '100.64.8.0/24', 'site-b': '100.65.0.0/16' },
};

const ruleArb = fc.record({
  src: fc.array(selectorArb, { minLength: 1, maxLength: 2 }),
  dst: fc.array(selectorArb, { minLength: 1, maxLength: 2 }),
  ports: fc.subarray(['tcp:22', 'tcp:20-30', 'udp:53', 'icmp', 'tcp', '*'], { minLength: 1 }),
});
type Rule = { src: string[]; dst: string[]; ports: string[] };
const associationsArb = fc.subarray([['site-a-cams', 'site-b']]);

/** An old rule list and a new one: some rules kept (in another order), a few added. */
const versionsArb = fc
  .array(ruleArb, { minLength: 8, maxLength: 16 })
  .chain((rules) =>
    fc.record({
      old: fc.constant(rules as Rule[]),
      kept: fc.shuffledSubarray(rules, { minLength: rules.length - 3 }),
      added: fc.array(ruleArb, { maxLength: 2 }),
      associations: associationsArb,
      // Now and then the blocks' associations change too: nothing is taken over then.
      newAssociations: fc.option(associationsArb, { nil: undefined, freq: 4 }),
    }),
  )
  .map((v) => ({
    old: policyOf({ ...FRAME, associations: v.associations, rules: v.old }),
    now: policyOf({
      ...FRAME,
      associations: v.newAssociations ?? v.associations,
      rules: [...v.kept, ...v.added],
    }),
  }));

const deviceArb = fc.record({
  id: fc.integer({ min: 0, max: 9 }).map((i) => `dev-${i}`),
  name: fc.constantFrom('laptop-1', 'printer', 'db', 'web'),
  address: fc.constantFrom('100.64.0.1', '100.64.8.1', '100.65.0.1', '100.100.0.1'),
  tags: fc.subarray(['tag:db', 'tag:ops', 'tag:web']),
  user: fc.constantFrom(undefined, 'alice@acme.com', 'bob@acme.com'),
});
const devicesArb = fc
  .uniqueArray(deviceArb, { selector: (d) => d.id, maxLength: 10 })
  .map((ds) => ds.map(({ user, ...d }) => (user === undefined ? d : { ...d, user })));

describe('RuleChange', () => {
  test('a pair it says no changed rule touches has the same access under both versions', () => {
    fc.assert(
      fc.property(versionsArb, devicesArb, ({ old, now }, devices) => {
        const change = RuleChange.between(old, now);
        if (!change) return;
        for (const a of devices) {
          for (const b of devices) {
            const [oa, ob, na, nb] = [
              deviceView(old, a),
              deviceView(old, b),
              deviceView(now, a),
              deviceView(now, b),
            ];
            if (change.touches(oa, ob, na, nb)) continue;
            expect(toAccessRules(openSet(now, na, nb))).toEqual(toAccessRules(openSet(old, oa, ob)));
          }
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  test('rules in another order are no change; other blocks or associations are not a rule change', () => {
    const rules = [
      { src: ['tag:web'], dst: ['tag:db'], ports: ['tcp:5432'] },
      { src: ['group:eng'], dst: ['*'], ports: ['tcp:22'] },
    ];
    const a = policyOf({ ...FRAME, rules });
    const b = policyOf({ ...FRAME, rules: [...rules].reverse() });
    expect(RuleChange.between(a, b)?.changedRules).toBe(0);
    const linked = policyOf({ ...FRAME, associations: [['site-a-cams', 'site-b']], rules });
    expect(RuleChange.between(a, linked)).toBeUndefined();
    // A group that now holds other members changes the rule naming it: one removed, one added.
    const more = [
      ...rules,
      ...['tcp:1', 'tcp:2', 'tcp:3', 'tcp:4', 'tcp:5', 'tcp:6'].map((p) => ({
        src: ['*'],
        dst: ['tag:web'],
        ports: [p],
      })),
    ];
    const groups = { ...FRAME.groups, 'group:eng': ['tag:web'] };
    const regrouped = policyOf({ ...FRAME, groups, rules: more });
    expect(RuleChange.between(policyOf({ ...FRAME, rules: more }), regrouped)?.changedRules).toBe(2);
    // Past a quarter of the rules changed, everything is computed again.
    expect(RuleChange.between(a, policyOf({ ...FRAME, groups, rules }))).toBeUndefined();
  });
});

describe('a version derived from the one it replaces', () => {
  test('answers as a fresh compile, with devices changing in both while relations are computed', () => {
    const edit = fc.oneof(
      deviceArb.map((d) => ({ kind: 'upsert' as const, d })),
      fc.integer({ min: 0, max: 9 }).map((i) => ({ kind: 'remove' as const, id: `dev-${i}` })),
    );
    fc.assert(
      fc.property(
        versionsArb,
        devicesArb,
        fc.array(fc.tuple(fc.nat(), edit), { maxLength: 8 }),
        ({ old, now }, devices, edits) => {
          const base = new CompiledPolicy(old, devices);
          for (const _ of base.computeRelations());
          const derived = new CompiledPolicy(now, devices, base);
          // The base is the policy in force: it takes device changes (classes emptied, their
          // slots reused) while the next version's relations are computed one step at a time;
          // the next version catches up at the end.
          const current = new Map(devices.map((d) => [d.id, d as PolicyDevice]));
          const steps = derived.computeRelations();
          let i = 0;
          for (let step = steps.next(); !step.done; step = steps.next(), i++) {
            for (const [at, e] of edits) {
              if (at % 4 !== i % 4) continue;
              if (e.kind === 'remove') {
                base.removeDevice(e.id);
                current.delete(e.id);
                continue;
              }
              const device = e.d.user === undefined ? { ...e.d, user: undefined } : e.d;
              base.upsertDevice(device);
              current.set(device.id, device);
              for (const id of current.keys()) base.peersByAccess(id);
            }
          }
          for (const d of devices) if (!current.has(d.id)) derived.removeDevice(d.id);
          for (const d of current.values()) derived.upsertDevice(d);
          const ids = [...current.keys()];
          expect(snapshot(derived, ids)).toEqual(snapshot(new CompiledPolicy(now, current.values()), ids));
          // Reading the base's relations left it as it was.
          expect(snapshot(base, ids)).toEqual(snapshot(new CompiledPolicy(old, current.values()), ids));
        },
      ),
      { numRuns: 300, seed: 12 },
    );
  });

  test('plans list exactly the devices whose access changed', () => {
    fc.assert(
      fc.property(versionsArb, devicesArb, ({ old, now }, devices) => {
        const changed = new Set<string>();
        for (const a of devices) {
          for (const b of devices) {
            if (a.id === b.id) continue;
            const was = toAccessRules(openSet(old, deviceView(old, a), deviceView(old, b)));
            const is = toAccessRules(openSet(now, deviceView(now, a), deviceView(now, b)));
            if (JSON.stringify(was) !== JSON.stringify(is)) changed.add(a.id).add(b.id);
          }
        }
        const plan = planPolicy(old, now, devices);
        expect(new Set(plan.map((e) => e.deviceId))).toEqual(changed);
      }),
      { numRuns: 300, seed: 13 },
    );
  });
});
