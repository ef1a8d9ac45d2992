import { CompiledPolicy, type Policy, type PolicyDevice, RuleChange } from '@trellis/policy';
import { ALLOW_ALL, EXIT_ROUTE, ipv4CidrWithin, type RouteAccess } from '@trellis/proto';
import fc from 'fast-check';
import { deviceView } from '../src/match';
import { NOTHING, type PortSet, toAccessRules, union } from '../src/ports';
import { selectorArb } from './support/arbitraries';
import { compile, policyOf, snapshot } from './support/compile-helpers';

const BASE = {
  groups: { 'group:eng': ['user:alice@acme.com', 'laptop-1'], 'group:ops': ['tag:ops'] },
  tagOwners: { 'tag:db': [], 'tag:ops': [], 'tag:web': [], 'tag:router': [] },
  cidrs: { 'site-a': '100.64.0.0/16', 'site-b': '100.65.0.0/16' },
};

const dev = (id: string, routes?: string[], tags: string[] = [], user?: string): PolicyDevice => ({
  id,
  name: id,
  address: '100.100.0.1',
  tags,
  ...(user === undefined ? {} : { user }),
  ...(routes === undefined ? {} : { routes }),
});

describe('access through gateways', () => {
  const file = {
    ...BASE,
    rules: [
      { src: ['group:eng'], dst: ['192.168.1.0/24'], ports: ['tcp:80'] },
      { src: ['group:eng'], dst: ['192.168.0.0/16'], ports: ['tcp:443'] },
      { src: ['group:ops'], dst: ['autogroup:internet'] },
    ],
  };
  const laptop = dev('laptop', undefined, [], 'alice@acme.com');
  const office = dev('office', ['192.168.1.0/24'], ['tag:router']);
  const exit = dev('exit', [EXIT_ROUTE]);
  const plain = dev('plain');
  const ops = dev('ops', undefined, ['tag:ops']);

  test('a viewer gets what it may reach through a peer; the gateway gets the same as routesIn', () => {
    const p = compile(file, [laptop, office, exit, plain, ops]);
    // No rule opens anything between the devices themselves: only their routes make them peers.
    expect(p.access('laptop', 'office')).toEqual({
      in: [],
      out: [],
      routesOut: [
        { prefix: '192.168.0.0/16', rules: [{ proto: 'tcp', ports: [[443, 443]] }] },
        { prefix: '192.168.1.0/24', rules: [{ proto: 'tcp', ports: [[80, 80]] }] },
      ],
    });
    expect(p.access('office', 'laptop')).toEqual({
      in: [],
      out: [],
      routesIn: p.access('laptop', 'office')!.routesOut,
    });
    // The exit node's 0.0.0.0/0 holds both of eng's prefixes; ops may use it for everything.
    expect(p.access('laptop', 'exit')?.routesOut?.map((r) => r.prefix)).toEqual([
      '192.168.0.0/16',
      '192.168.1.0/24',
    ]);
    expect(p.access('ops', 'exit')).toEqual({
      in: [],
      out: [],
      routesOut: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }],
    });
    // autogroup:internet is exit-node use only: no subnet behind the office gateway.
    expect(p.access('ops', 'office')).toBeNull();
    expect(p.access('ops', 'laptop')).toBeNull();
    expect(p.access('laptop', 'plain')).toBeNull();
    expect([...p.visiblePeers('laptop')].sort()).toEqual(['exit', 'office']);
    expect(p.peersByAccess('office').map((g) => [g.peers, g.routesIn?.map((r) => r.prefix)])).toEqual([
      [['laptop'], ['192.168.0.0/16', '192.168.1.0/24']],
    ]);
  });

  test('0.0.0.0/0 and * cover every subnet; with autogroup:internet they merge into one entry', () => {
    const wide = compile({ ...BASE, rules: [{ src: ['group:ops'], dst: ['0.0.0.0/0'] }] }, [ops, office]);
    // The office gateway narrows 0.0.0.0/0 to its own route.
    expect(wide.access('ops', 'office')?.routesOut).toEqual([{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }]);
    const both = compile(
      {
        ...BASE,
        rules: [
          { src: ['group:ops'], dst: ['autogroup:internet'], ports: ['tcp:443'] },
          { src: ['group:ops'], dst: ['0.0.0.0/0'], ports: ['udp:53'] },
        ],
      },
      [ops, exit],
    );
    expect(both.access('ops', 'exit')?.routesOut).toEqual([
      {
        prefix: EXIT_ROUTE,
        rules: [
          { proto: 'tcp', ports: [[443, 443]] },
          { proto: 'udp', ports: [[53, 53]] },
        ],
      },
    ]);
  });

  test('the default policy lets everybody use every route', () => {
    const p = compile({ rules: [{ src: ['*'], dst: ['*'] }] }, [laptop, office]);
    expect(p.access('laptop', 'office')).toEqual({
      in: ALLOW_ALL,
      out: ALLOW_ALL,
      routesOut: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }],
    });
  });

  test('a change of routes moves the device to another class', () => {
    const p = compile(file, [laptop, office]);
    expect(p.upsertDevice({ ...office, routes: ['192.168.1.0/24'] })).toEqual({ classChanged: false });
    expect(p.upsertDevice({ ...office, routes: ['10.0.0.0/8'] })).toEqual({ classChanged: true });
    expect(p.access('laptop', 'office')).toBeNull();
    expect(p.upsertDevice({ ...office, routes: ['192.168.2.0/24'] })).toEqual({ classChanged: true });
    expect(p.access('laptop', 'office')?.routesOut?.map((r) => r.prefix)).toEqual(['192.168.0.0/16']);
  });
});

const ROUTE_DSTS = ['192.168.1.0/24', '192.168.0.0/16', '10.0.0.5/32', '0.0.0.0/0', 'autogroup:internet'];
const ROUTES = ['192.168.1.0/24', '192.168.2.0/24', '10.0.0.0/8', EXIT_ROUTE, '172.16.5.0/24'];

const ruleArb = fc.record({
  src: fc.array(selectorArb, { minLength: 1, maxLength: 2 }),
  dst: fc.array(fc.oneof(selectorArb, fc.constantFrom(...ROUTE_DSTS)), { minLength: 1, maxLength: 3 }),
  ports: fc.option(fc.subarray(['tcp:22', 'tcp:20-30', 'udp:53', 'icmp', '*'], { minLength: 1 }), {
    nil: undefined,
  }),
});
const policyArb = fc.array(ruleArb, { maxLength: 6 }).map((rules) => ({
  ...BASE,
  tagOwners: { ...BASE.tagOwners, 'tag:db': [], 'tag:web': [] },
  rules: rules.map((r) => (r.ports === undefined ? { src: r.src, dst: r.dst } : r)),
}));
const deviceArb = fc.record({
  id: fc.integer({ min: 0, max: 7 }).map((i) => `dev-${i}`),
  name: fc.constantFrom('laptop-1', 'printer', 'db'),
  address: fc.constantFrom('100.64.0.1', '100.65.0.1', '100.100.0.1'),
  tags: fc.subarray(['tag:db', 'tag:ops', 'tag:web']),
  routes: fc.subarray(ROUTES),
});

/** What `a` may reach through `b`'s routes, rule by rule, without classes. */
function bruteRoutes(policy: Policy, a: PolicyDevice, b: PolicyDevice): RouteAccess[] {
  const sets = new Map<string, PortSet>();
  const src = new Set(deviceView(policy, a).srcRules);
  policy.rules.forEach((rule, i) => {
    if (!src.has(i)) return;
    for (const dst of rule.dstRoutes) {
      const internet = dst === 'autogroup:internet';
      const prefix = internet ? EXIT_ROUTE : dst;
      const via = (b.routes ?? []).some((r) =>
        internet ? r === EXIT_ROUTE : ipv4CidrWithin(prefix, r) || ipv4CidrWithin(r, prefix),
      );
      if (via) sets.set(prefix, union(sets.get(prefix) ?? NOTHING, rule.ports));
    }
  });
  return [...sets.keys()].sort().map((prefix) => ({ prefix, rules: toAccessRules(sets.get(prefix)!) }));
}

describe('route access by class equals the per-device computation', () => {
  test('random policies and gateways', () => {
    let routed = 0;
    fc.assert(
      fc.property(
        policyArb,
        fc.uniqueArray(deviceArb, { selector: (d) => d.id, maxLength: 8 }),
        (file, devices) => {
          const policy = policyOf(file);
          const p = new CompiledPolicy(policy, devices);
          for (const a of devices) {
            const visible = new Set(p.visiblePeers(a.id));
            for (const b of devices) {
              if (a.id === b.id) continue;
              const ab = p.access(a.id, b.id);
              const out = bruteRoutes(policy, a, b);
              const inn = bruteRoutes(policy, b, a);
              expect(ab?.routesOut ?? []).toEqual(out);
              expect(ab?.routesIn ?? []).toEqual(inn);
              if (out.length > 0) routed++;
              const shared = p.classAccess(p.classOf(a.id)!, p.classOf(b.id)!);
              expect(shared?.routesOut.list ?? []).toEqual(out);
              const ports = ab !== null && ab.in.length + ab.out.length > 0;
              expect(ab !== null).toBe(ports || out.length > 0 || inn.length > 0);
              expect(visible.has(b.id)).toBe(ab !== null);
            }
          }
        },
      ),
      { numRuns: 200, seed: 21 },
    );
    // The runs did exercise routes, not only empty lists.
    expect(routed).toBeGreaterThan(100);
  });

  test('upserts that change routes, and a derived policy, match a fresh compile', () => {
    fc.assert(
      fc.property(
        policyArb,
        ruleArb,
        fc.uniqueArray(deviceArb, { selector: (d) => d.id, maxLength: 6 }),
        fc.array(deviceArb, { maxLength: 12 }),
        (file, extra, devices, ops) => {
          const old = policyOf(file);
          const base = new CompiledPolicy(old, devices);
          for (const _ of base.computeRelations());
          const current = new Map(devices.map((d) => [d.id, d]));
          for (const d of ops) {
            base.upsertDevice(d);
            current.set(d.id, d);
            for (const id of current.keys()) base.peersByAccess(id);
          }
          const ids = [...current.keys()];
          expect(snapshot(base, ids)).toEqual(snapshot(new CompiledPolicy(old, current.values()), ids));
          // One more rule: relations no added rule touches are taken from the base.
          const now = policyOf({ ...file, rules: [...file.rules, extra] });
          const derived = new CompiledPolicy(now, current.values(), base);
          const fresh = new CompiledPolicy(now, current.values());
          expect(snapshot(derived, ids)).toEqual(snapshot(fresh, ids));
          // What the broker's unchangedSince relies on: an untouched pair keeps its route access.
          const change = RuleChange.between(old, now);
          for (const a of ids) {
            for (const b of ids) {
              const [oa, ob, na, nb] = [base, base, fresh, fresh].map(
                (c, i) => c.viewOfDevice(i % 2 ? b : a)!,
              );
              if (a === b || !change || change.touches(oa!, ob!, na!, nb!)) continue;
              expect(fresh.access(a, b)?.routesOut ?? []).toEqual(base.access(a, b)?.routesOut ?? []);
            }
          }
        },
      ),
      { numRuns: 200, seed: 22 },
    );
  });
});
