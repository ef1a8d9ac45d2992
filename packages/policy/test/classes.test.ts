import { CompiledPolicy, type PolicyDevice } from '@trellis/policy';
import fc from 'fast-check';
import { deviceView, openSet } from '../src/match';
import { toAccessRules } from '../src/ports';
import { selectorArb } from './support/arbitraries';
import { compile, policyOf, snapshot } from './support/compile-helpers';

const POLICY = {
  groups: { 'group:eng': ['user:alice@acme.com', 'laptop-1'], 'group:ops': ['tag:ops'] },
  tagOwners: { 'tag:db': [], 'tag:ops': [], 'tag:web': [] },
  cidrs: { 'site-a': '100.64.0.0/16', 'site-a-cams': '100.64.8.0/24', 'site-b': '100.65.0.0/16' },
  associations: [['site-a-cams', 'site-b']],
  rules: [
    { src: ['group:eng'], dst: ['tag:db', 'tag:web'], ports: ['tcp:5432', 'udp:53'] },
    { src: ['group:ops'], dst: ['*'], ports: ['tcp:22', 'icmp'] },
    { src: ['tag:web'], dst: ['tag:db'], ports: ['tcp:5432'] },
    { src: ['cidr:site-b'], dst: ['printer'] },
  ],
};

describe('classes', () => {
  test('10,000 devices with 5 distinct memberships compile to 5 classes', () => {
    const kinds: Array<Omit<PolicyDevice, 'id' | 'name'>> = [
      { address: '100.100.0.1', tags: ['tag:db'] },
      { address: '100.100.0.1', tags: ['tag:web', 'tag:unused'] },
      { address: '100.100.0.1', tags: [], user: 'alice@acme.com' },
      { address: '100.100.0.1', tags: [], user: 'someone@acme.com' }, // like every untagged device
      { address: '100.64.8.1', tags: ['tag:ops'] },
    ];
    const devices = Array.from({ length: 10_000 }, (_, i) => {
      const k = kinds[i % kinds.length]!;
      // Addresses and names differ; only what the selectors use decides the class.
      const address = k.address.replace(/\.\d+$/, `.${(i % 250) + 1}`);
      return { ...k, id: `d${i}`, name: `host-${i}`, address };
    });
    const p = compile(POLICY, devices);
    expect(p.classCount).toBe(5);
    expect(p.classOf('d0')).toBe(p.classOf('d5'));
    expect(p.classOf('d0')).not.toBe(p.classOf('d1'));
    // A viewer's peers come from a walk over 5 classes: at most 5 groups, whole classes in each.
    let seen = 0;
    for (let i = 0; i < 200; i++) {
      const groups = p.peersByAccess(`d${i}`);
      expect(groups.length).toBeLessThanOrEqual(5);
      for (const g of groups) expect([0, 1_999]).toContain(g.peers.length % 2_000);
      seen += groups.reduce((n, g) => n + g.peers.length, 0);
    }
    expect(seen).toBeGreaterThan(0);
  });

  test('a device named in the policy gets its own class', () => {
    const devices = [
      { id: '1', name: 'laptop-1', address: '100.100.0.1', tags: [] },
      { id: '2', name: 'laptop-2', address: '100.100.0.2', tags: [] },
      { id: '3', name: 'laptop-3', address: '100.100.0.3', tags: [] },
    ];
    const p = compile(POLICY, devices);
    expect(p.classCount).toBe(2);
    expect(p.classOf('2')).toBe(p.classOf('3'));
  });

  test('upsert reports whether the class changed; remove drops empty classes', () => {
    const p = compile(POLICY, []);
    const d = { id: '1', name: 'x', address: '100.100.0.1', tags: [] as string[] };
    expect(p.upsertDevice(d)).toEqual({ classChanged: true });
    expect(p.upsertDevice({ ...d, name: 'renamed', address: '100.100.0.9' })).toEqual({
      classChanged: false,
    });
    expect(p.device('1')?.name).toBe('renamed');
    expect(p.upsertDevice({ ...d, tags: ['tag:db'] })).toEqual({ classChanged: true });
    expect(p.classCount).toBe(1);
    expect(p.removeDevice('1')).toBe(true);
    expect(p.removeDevice('1')).toBe(false);
    expect(p.classCount).toBe(0);
    expect(p.classOf('1')).toBeUndefined();
  });
});

const names = ['laptop-1', 'printer', 'db', 'web', 'cam'];
const addresses = [
  '100.64.0.1',
  '100.64.8.1',
  '100.64.8.2',
  '100.65.0.1',
  '100.100.0.1',
  '100.66.0.1',
  'bogus',
];
const tagPool = ['tag:db', 'tag:ops', 'tag:web', 'tag:other'];
const users = [undefined, 'alice@acme.com', 'ALICE@acme.com', 'bob@acme.com'];

const deviceArb = fc.record({
  id: fc.integer({ min: 0, max: 11 }).map((i) => `dev-${i}`),
  name: fc.constantFrom(...names),
  address: fc.constantFrom(...addresses),
  tags: fc.subarray(tagPool),
  user: fc.constantFrom(...users),
});
const opArb = fc.oneof(
  { weight: 3, arbitrary: deviceArb.map((d) => ({ kind: 'upsert' as const, d })) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 11 }).map((i) => ({ kind: 'remove' as const, id: `dev-${i}` })),
  },
);

const portsArb = fc.option(
  fc.subarray(['tcp:22', 'tcp:20-30', 'udp:53', 'icmp', 'tcp', '*', 'udp:1-65535'], { minLength: 1 }),
  { nil: undefined },
);
const policyArb = fc
  .record({
    rules: fc.array(
      fc.record({
        src: fc
          .subarray(['*', 'group:eng', 'tag:db', 'printer', 'cidr:site-a'], { minLength: 1 })
          .chain(() => fc.array(selectorArb, { minLength: 1, maxLength: 3 })),
        dst: fc.array(selectorArb, { minLength: 1, maxLength: 3 }),
        ports: portsArb,
      }),
      { maxLength: 5 },
    ),
    associations: fc.subarray([
      ['site-a-cams', 'site-b'],
      ['site-a', 'site-a'],
    ]),
  })
  .map(({ rules, associations }) => ({
    ...POLICY,
    associations,
    rules: rules.map((r) => (r.ports === undefined ? { src: r.src, dst: r.dst } : r)),
  }));

describe('incremental changes match a fresh compile', () => {
  test('upserts and removals in any order', () => {
    fc.assert(
      fc.property(policyArb, fc.array(opArb, { maxLength: 40 }), (policyFile, ops) => {
        const policy = policyOf(policyFile);
        const live = new CompiledPolicy(policy);
        const current = new Map<string, PolicyDevice>();
        for (const op of ops) {
          if (op.kind === 'remove') {
            expect(live.removeDevice(op.id)).toBe(current.delete(op.id));
            continue;
          }
          const d = op.d.user === undefined ? { ...op.d, user: undefined } : op.d;
          const before = live.classOf(d.id);
          const { classChanged } = live.upsertDevice(d);
          if (!classChanged) expect(live.classOf(d.id)).toBe(before);
          current.set(d.id, d);
          // Asked between changes, so relations cached for classes that go away (and slots
          // handed to new classes) are part of what is compared at the end.
          for (const id of current.keys()) live.peersByAccess(id);
        }
        const fresh = new CompiledPolicy(policy, current.values());
        const ids = [...current.keys()];
        expect(snapshot(live, ids)).toEqual(snapshot(fresh, ids));
        expect(live.classCount).toBe(fresh.classCount);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  test('in and out mirror, visibility matches access, classes match devices one by one', () => {
    fc.assert(
      fc.property(
        policyArb,
        fc.uniqueArray(deviceArb, { selector: (d) => d.id, maxLength: 12 }),
        (file, devices) => {
          const policy = policyOf(file);
          const p = new CompiledPolicy(policy, devices);
          for (const a of devices) {
            const visible = new Set(p.visiblePeers(a.id));
            for (const b of devices) {
              const ab = p.access(a.id, b.id);
              const ba = p.access(b.id, a.id);
              expect(ab === null ? null : { in: ab.out, out: ab.in }).toEqual(ba);
              // The same answer device by device, without classes.
              const out = toAccessRules(openSet(policy, deviceView(policy, a), deviceView(policy, b)));
              if (ab) expect(ab.out).toEqual(out);
              else if (a.id !== b.id) expect(out).toEqual([]);
              expect(visible.has(b.id)).toBe(ab !== null);
              if (ab) expect(ab.in.length + ab.out.length).toBeGreaterThan(0);
            }
            const grouped = p.peersByAccess(a.id).flatMap((g) => g.peers);
            expect(new Set(grouped)).toEqual(visible);
            expect(grouped.length).toBe(visible.size);
          }
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });
});
