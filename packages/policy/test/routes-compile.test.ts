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
    // The exit route carries no subnet prefix (eng gets nothing through it); ops may use it.
    expect(p.access('laptop', 'exit')).toBeNull();
    expect(p.access('ops', 'exit')).toEqual({
      in: [],
      out: [],
      routesOut: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }],
    });
    // autogroup:internet is exit-node use only: no subnet behind the office gateway.
    expect(p.access('ops', 'office')).toBeNull();
    expect(p.access('ops', 'laptop')).toBeNull();
    expect(p.access('laptop', 'plain')).toBeNull();
    expect([...p.visiblePeers('laptop')].sort()).toEqual(['office']);
    expect(p.peersByAccess('office').map((g) => [g.peers, g.routesIn?.map((r) => r.prefix)])).toEqual([
      [['laptop'], ['192.168.0.0/16', '192.168.1.0/24']],
    ]);
  });

  test('0.0.0.0/0 and * cover every route; with autogroup:internet they merge on the exit route', () => {
    const wide = compile({ ...BASE, rules: [{ src: ['group:ops'], dst: ['0.0.0.0/0'] }] }, [ops, office]);
    // 0.0.0.0/0 opens the office gateway's own route, by name (EXIT_ROUTE is the exit route only).
    expect(wide.access('ops', 'office')?.routesOut).toEqual([{ prefix: '192.168.1.0/24', rules: ALLOW_ALL }]);
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
      routesOut: [{ prefix: '192.168.1.0/24', rules: ALLOW_ALL }],
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

describe('an exit node that also serves a subnet', () => {
  const gw = dev('gw', [EXIT_ROUTE, '192.168.1.0/24']);
  const x = dev('x', undefined, ['tag:ops']);
  const through = (dst: string[], ports?: string[]) =>
    compile({ ...BASE, rules: [{ src: ['tag:ops'], dst, ...(ports ? { ports } : {}) }] }, [x, gw]);

  test('autogroup:internet opens the exit route only, never the subnet', () => {
    const p = through(['autogroup:internet']);
    expect(p.access('x', 'gw')).toEqual({
      in: [],
      out: [],
      routesOut: [{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }],
    });
    expect(p.access('gw', 'x')?.routesIn).toEqual([{ prefix: EXIT_ROUTE, rules: ALLOW_ALL }]);
  });

  test('a subnet prefix opens the subnet only, never the exit route', () => {
    expect(through(['192.168.1.0/24']).access('x', 'gw')?.routesOut).toEqual([
      { prefix: '192.168.1.0/24', rules: ALLOW_ALL },
    ]);
    // A public prefix is no subnet of the gateway: the exit route does not carry it.
    expect(through(['8.8.8.0/24']).access('x', 'gw')).toBeNull();
  });

  test('* and 0.0.0.0/0 open both, each by name', () => {
    for (const dst of [['*'], ['0.0.0.0/0']]) {
      expect(through(dst).access('x', 'gw')?.routesOut).toEqual([
        { prefix: EXIT_ROUTE, rules: ALLOW_ALL },
        { prefix: '192.168.1.0/24', rules: ALLOW_ALL },
      ]);
    }
  });

  test('with * the routes are in the class: two gateways of other routes differ', () => {
    const p = compile({ rules: [{ src: ['*'], dst: ['*'] }] }, [x, gw, dev('gw2', ['10.1.0.0/16'])]);
    expect(p.classOf('gw')).not.toBe(p.classOf('gw2'));
    expect(p.access('x', 'gw2')?.routesOut).toEqual([{ prefix: '10.1.0.0/16', rules: ALLOW_ALL }]);
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

/**
 * What `a` may reach through `b`'s routes, rule by rule, without classes. On the wire EXIT_ROUTE
 * is the exit route alone: everything (`*`, 0.0.0.0/0) opens each of b's routes by name,
 * autogroup:internet only b's exit route, a subnet prefix only b's subnet routes.
 */
function bruteRoutes(policy: Policy, a: PolicyDevice, b: PolicyDevice): RouteAccess[] {
  const sets = new Map<string, PortSet>();
  const src = new Set(deviceView(policy, a).srcRules);
  const open = (prefix: string, rule: Policy['rules'][number]) =>
    sets.set(prefix, union(sets.get(prefix) ?? NOTHING, rule.ports));
  const routes = b.routes ?? [];
  const subnets = routes.filter((r) => r !== EXIT_ROUTE);
  policy.rules.forEach((rule, i) => {
    if (!src.has(i)) return;
    for (const dst of rule.dstRoutes) {
      if (dst === EXIT_ROUTE) for (const r of routes) open(r, rule);
      else if (dst === 'autogroup:internet') {
        if (routes.includes(EXIT_ROUTE)) open(EXIT_ROUTE, rule);
      } else if (subnets.some((r) => ipv4CidrWithin(dst, r) || ipv4CidrWithin(r, dst))) open(dst, rule);
    }
  });
  return [...sets.keys()].sort().map((prefix) => ({ prefix, rules: toAccessRules(sets.get(prefix)!) }));
}

describe('route access by class equals the per-device computation', () => {
  test('random policies and gateways', () => {
    let routed = 0;
    let mixed = 0;
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
              if (b.routes.includes(EXIT_ROUTE) && b.routes.length > 1 && out.length > 0) mixed++;
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
    // The runs did exercise routes, not only empty lists, exit nodes that serve subnets too among them.
    expect(routed).toBeGreaterThan(100);
    expect(mixed).toBeGreaterThan(20);
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
