import { generateKeyPair, signKeyRotation } from '@trellis/crypto';
import {
  ALLOW_ALL,
  EXIT_ROUTE,
  ipv4CidrWithin,
  ipv4InCidr,
  type RouteAccess,
  SPECIAL_RANGES,
} from '@trellis/proto';
import fc from 'fast-check';
import {
  type ExitPeer,
  exitNodeProblem,
  findPeerFor,
  overlaps,
  type RouteSelectionInput,
  resolveExitNode,
  type SelectorPeer,
  selectRoutes,
} from '../../src/routes/route-selector';

const access = (...prefixes: string[]): RouteAccess[] =>
  prefixes.map((prefix) => ({ prefix, rules: ALLOW_ALL }));

const peer = (id: string, routes: Array<[string, number]>, online = true): SelectorPeer => ({
  id,
  name: `gw-${id}`,
  online,
  routes: routes.map(([prefix, since]) => ({ prefix, since })),
});

function input(over: Partial<RouteSelectionInput>): RouteSelectionInput {
  return {
    peers: [],
    routesOut: new Map(),
    acceptRoutes: true,
    exitNode: null,
    localSubnets: [],
    alive: () => true,
    ...over,
  };
}

describe('selectRoutes', () => {
  const a = peer('a', [['192.168.1.0/24', 100]]);
  const b = peer('b', [['192.168.1.0/24', 50]]);
  const routesOut = new Map([
    ['a', access('192.168.0.0/16')],
    ['b', access('192.168.1.0/24')],
  ]);

  it('picks the gateway that served longest and routes the prefix into the mesh', () => {
    const s = selectRoutes(input({ peers: [a, b], routesOut }));
    expect(s.allowedIps).toEqual(new Map([['b', ['192.168.1.0/24']]]));
    expect(s.kernelRoutes).toEqual(['192.168.1.0/24']);
    expect(s.rows).toEqual([
      {
        prefix: '192.168.1.0/24',
        via: 'gw-b',
        gateways: [
          { name: 'gw-b', alive: true },
          { name: 'gw-a', alive: true },
        ],
        installed: true,
      },
    ]);
    expect(s.watched).toEqual(new Set(['a', 'b']));
    expect(s.sample).toBe(true);
  });

  it('fails over to the next live gateway without changing the kernel routes, and goes back', () => {
    const dead = new Set(['b']);
    const s1 = selectRoutes(input({ peers: [a, b], routesOut, alive: (id) => !dead.has(id) }));
    expect(s1.allowedIps).toEqual(new Map([['a', ['192.168.1.0/24']]]));
    expect(s1.kernelRoutes).toEqual(['192.168.1.0/24']);
    dead.clear();
    const s2 = selectRoutes(input({ peers: [a, b], routesOut, alive: (id) => !dead.has(id) }));
    expect(s2.allowedIps).toEqual(new Map([['b', ['192.168.1.0/24']]]));
  });

  it('goes back to a returning primary only once its tunnel has answered', () => {
    const current = new Map([['192.168.1.0/24', 'a']]);
    const back = (proven: boolean) =>
      selectRoutes(input({ peers: [a, b], routesOut, current, proven: () => proven })).rows[0]!.via;
    expect(back(false)).toBe('gw-a');
    expect(back(true)).toBe('gw-b');
    // A current gateway that died is left at once, for whichever live one is preferred.
    const s = selectRoutes(
      input({ peers: [a, b], routesOut, current, proven: () => false, alive: (id) => id !== 'a' }),
    );
    expect(s.rows[0]!.via).toBe('gw-b');
  });

  it('counts a gateway the broker reports offline as dead', () => {
    const s = selectRoutes(input({ peers: [a, { ...b, online: false }], routesOut }));
    expect(s.rows[0]!.via).toBe('gw-a');
  });

  it('keeps the prefix on the preferred gateway (fail closed, not to the exit node) when none is alive', () => {
    const s = selectRoutes(input({ peers: [a, b], routesOut, alive: () => false }));
    expect(s.allowedIps).toEqual(new Map([['b', ['192.168.1.0/24']]]));
    expect(s.kernelRoutes).toEqual(['192.168.1.0/24']);
    expect(s.rows[0]).toMatchObject({ via: null, installed: true, reason: 'no live gateway' });
  });

  it('installs only the part of an advertised prefix the policy allows', () => {
    const wide = peer('w', [['10.0.0.0/8', 1]]);
    const s = selectRoutes(
      input({
        peers: [wide],
        routesOut: new Map([['w', access('10.1.2.0/24', '10.9.0.0/16', '192.168.0.0/16')]]),
      }),
    );
    expect(s.allowedIps).toEqual(new Map([['w', ['10.1.2.0/24', '10.9.0.0/16']]]));
    expect(s.kernelRoutes).toEqual(['10.1.2.0/24', '10.9.0.0/16']);
    expect(s.rows.map((r) => [r.prefix, r.via])).toEqual([
      ['10.1.2.0/24', 'gw-w'],
      ['10.9.0.0/16', 'gw-w'],
    ]);
  });

  it('leaves out prefixes covering the broker, relays, peer endpoints, the default gateway or DNS', () => {
    const gw = peer('g', [
      ['198.51.100.0/24', 1],
      ['192.168.1.0/24', 1],
      ['10.0.0.0/8', 1],
    ]);
    const s = selectRoutes(
      input({
        peers: [gw],
        routesOut: new Map([['g', access('0.0.0.0/1', '128.0.0.0/1')]]),
        keepOut: [
          { address: '198.51.100.7', what: "peer gw-g's endpoint" },
          { address: '10.20.30.40', what: 'the broker' },
          { address: '203.0.113.10', what: 'the broker' },
        ],
      }),
    );
    expect(s.kernelRoutes).toEqual(['192.168.1.0/24']);
    expect(s.allowedIps).toEqual(new Map([['g', ['192.168.1.0/24']]]));
    expect(s.rows.filter((r) => !r.installed).map((r) => [r.prefix, r.reason])).toEqual([
      ['10.0.0.0/8', 'covers the broker 10.20.30.40'],
      ['198.51.100.0/24', "covers peer gw-g's endpoint 198.51.100.7"],
    ]);
  });

  it('refuses prefixes wider than /8 and ones overlapping reserved ranges', () => {
    const gw = peer('g', [
      ['0.0.0.0/1', 1],
      ['127.0.0.0/8', 1],
      ['169.254.1.0/24', 1],
      ['224.1.0.0/16', 1],
      ['240.0.0.0/8', 1],
    ]);
    const s = selectRoutes(
      input({ peers: [gw], routesOut: new Map([['g', access('0.0.0.0/1', '128.0.0.0/1')]]) }),
    );
    expect(s.kernelRoutes).toEqual([]);
    expect(s.allowedIps.size).toBe(0);
    expect(s.rows.map((r) => [r.prefix, r.reason])).toEqual([
      ['0.0.0.0/1', 'wider than /8'],
      ['127.0.0.0/8', 'overlaps the reserved range 127.0.0.0/8'],
      ['169.254.1.0/24', 'overlaps the reserved range 169.254.0.0/16'],
      ['224.1.0.0/16', 'overlaps the reserved range 224.0.0.0/4'],
      ['240.0.0.0/8', 'overlaps the reserved range 240.0.0.0/4'],
    ]);
  });

  it('uses a gateway only when the policy lets us reach part of the prefix through it', () => {
    const s = selectRoutes(input({ peers: [a, b], routesOut: new Map([['a', access('10.0.0.0/8')]]) }));
    expect(s.allowedIps.size).toBe(0);
    expect(s.kernelRoutes).toEqual([]);
    expect(s.rows[0]).toMatchObject({ installed: false, reason: 'not allowed by the access policy' });
    const onlyA = selectRoutes(
      input({ peers: [a, b], routesOut: new Map([['a', access('192.168.1.0/24')]]) }),
    );
    expect(onlyA.allowedIps).toEqual(new Map([['a', ['192.168.1.0/24']]]));
    expect(onlyA.sample).toBe(false);
  });

  it('skips prefixes overlapping a local subnet or its own routes, and everything without accept-routes', () => {
    const local = selectRoutes(input({ peers: [a], routesOut, localSubnets: ['192.168.1.0/25'] }));
    expect(local.rows[0]).toMatchObject({
      installed: false,
      reason: 'overlaps the local subnet 192.168.1.0/25',
    });
    expect(local.kernelRoutes).toEqual([]);
    const own = selectRoutes(input({ peers: [a], routesOut, ownRoutes: ['192.168.0.0/16'] }));
    expect(own.rows[0]).toMatchObject({
      installed: false,
      reason: 'overlaps 192.168.0.0/16, which this device advertises',
    });
    const off = selectRoutes(input({ peers: [a], routesOut, acceptRoutes: false }));
    expect(off.rows[0]).toMatchObject({ installed: false, reason: 'not accepted (--accept-routes false)' });
  });

  it('breaks a tie on since by the lowest device id', () => {
    const c = peer('c', [['10.1.0.0/16', 5]]);
    const d = peer('d', [['10.1.0.0/16', 5]]);
    const s = selectRoutes(
      input({
        peers: [d, c],
        routesOut: new Map([
          ['c', access('10.0.0.0/8')],
          ['d', access('10.0.0.0/8')],
        ]),
      }),
    );
    expect(s.rows[0]!.via).toBe('gw-c');
  });

  describe('exit node', () => {
    const x = peer('x', [
      [EXIT_ROUTE, 1],
      ['172.16.0.0/12', 1],
    ]);
    const allowed = new Map([['x', access(EXIT_ROUTE, '172.16.0.0/12')]]);

    it("reads EXIT_ROUTE access as the exit route alone: it opens none of the node's subnets", () => {
      const internetOnly = new Map([['x', access(EXIT_ROUTE)]]);
      const s = selectRoutes(input({ peers: [x], routesOut: internetOnly, exitNode: 'x' }));
      expect(s.allowedIps.get('x')).toEqual([EXIT_ROUTE]);
      expect(s.kernelRoutes).toEqual([]);
      expect(s.rows).toEqual([expect.objectContaining({ prefix: '172.16.0.0/12', installed: false })]);
      expect(exitNodeProblem(x, internetOnly)).toBeNull();
      // And a subnet's access never opens the exit route, however wide.
      expect(exitNodeProblem(x, new Map([['x', access('172.16.0.0/12', '0.0.0.0/1')]]))).not.toBeNull();
    });

    it('gives the exit route to the chosen exit node only, never as a kernel route', () => {
      const s = selectRoutes(input({ peers: [x], routesOut: allowed, exitNode: 'x' }));
      expect(s.allowedIps.get('x')).toEqual(['172.16.0.0/12', EXIT_ROUTE]);
      expect(s.kernelRoutes).toEqual(['172.16.0.0/12']);
      expect(s.exitGateway).toBe('x');
      expect(s.exitCandidate).toBe('x');
    });

    it('gives it to nobody when not chosen, not allowed, or dead', () => {
      expect(selectRoutes(input({ peers: [x], routesOut: allowed })).exitGateway).toBeNull();
      const notAllowed = selectRoutes(
        input({ peers: [x], routesOut: new Map([['x', access('172.16.0.0/12')]]), exitNode: 'x' }),
      );
      expect(notAllowed.exitCandidate).toBeNull();
      expect(notAllowed.allowedIps.get('x')).toEqual(['172.16.0.0/12']);
      const dead = selectRoutes(input({ peers: [x], routesOut: allowed, exitNode: 'x', alive: () => false }));
      expect(dead.exitCandidate).toBe('x');
      expect(dead.exitGateway).toBeNull();
      // Its subnet route stays on it (fail closed); the exit route does not.
      expect(dead.allowedIps.get('x')).toEqual(['172.16.0.0/12']);
    });

    it('explains why a chosen peer is not usable', () => {
      expect(exitNodeProblem(undefined, allowed)).toBe('no such peer in the netmap');
      expect(exitNodeProblem(a, allowed)).toBe('it is not an approved exit node');
      expect(exitNodeProblem(x, new Map())).toBe('the access policy does not allow it');
      expect(exitNodeProblem(x, allowed)).toBeNull();
    });

    it('finds a peer by name, DNS name, address or id', () => {
      const peers = [{ id: 'x', name: 'Exit', dnsName: 'exit.acme.example', address: '100.64.0.9' }];
      for (const q of ['x', 'exit', 'EXIT', 'exit.acme.example.', '100.64.0.9']) {
        expect(findPeerFor(q, peers)?.id).toBe('x');
      }
      expect(findPeerFor('nope', peers)).toBeUndefined();
    });
  });

  it('maps every prefix to at most one allowed gateway, never onto a kept-out host (property)', () => {
    const prefixes = [
      '10.0.0.0/8',
      '10.1.0.0/16',
      '192.168.1.0/24',
      '172.16.0.0/12',
      '0.0.0.0/2',
      '224.0.0.0/4',
      EXIT_ROUTE,
    ];
    const ids = ['p1', 'p2', 'p3', 'p4'];
    const arb = fc.record({
      peers: fc.uniqueArray(
        fc.record({
          id: fc.constantFrom(...ids),
          online: fc.boolean(),
          routes: fc
            .uniqueArray(fc.constantFrom(...prefixes))
            .map((ps) => ps.map((p, i) => [p, i] as [string, number])),
        }),
        { maxLength: 4, selector: (p) => p.id },
      ),
      out: fc.array(
        fc.tuple(fc.constantFrom(...ids), fc.constantFrom(...prefixes, '10.1.2.0/24', '0.0.0.0/1')),
      ),
      dead: fc.uniqueArray(fc.constantFrom(...ids)),
      exitNode: fc.option(fc.constantFrom(...ids)),
      local: fc.option(fc.constantFrom('10.1.5.0/24', '192.168.0.0/16')),
      keepOut: fc.uniqueArray(fc.constantFrom('10.1.2.3', '172.16.9.9', '192.168.1.1')),
      acceptRoutes: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, (c) => {
        const peers = c.peers.map((p) => peer(p.id, p.routes, p.online));
        const routesOut = new Map<string, RouteAccess[]>();
        for (const [id, prefix] of c.out)
          routesOut.set(id, [...(routesOut.get(id) ?? []), ...access(prefix)]);
        const live = (id: string) => peers.find((p) => p.id === id)!.online && !c.dead.includes(id);
        const s = selectRoutes(
          input({
            peers,
            routesOut,
            acceptRoutes: c.acceptRoutes,
            exitNode: c.exitNode,
            localSubnets: c.local ? [c.local] : [],
            alive: (id) => !c.dead.includes(id),
            keepOut: c.keepOut.map((address) => ({ address, what: 'the broker' })),
          }),
        );
        const owners = new Map<string, string>();
        for (const [id, list] of s.allowedIps) {
          for (const prefix of list) {
            expect(owners.has(prefix)).toBe(false);
            owners.set(prefix, id);
            const p = peers.find((q) => q.id === id)!;
            const access = routesOut.get(id) ?? [];
            if (prefix === EXIT_ROUTE) {
              expect(id).toBe(c.exitNode);
              expect(live(id)).toBe(true);
              expect(access.some((r) => r.prefix === EXIT_ROUTE)).toBe(true);
              continue;
            }
            // Inside what the gateway advertises and what the policy allows through it.
            expect(p.routes!.some((r) => r.prefix !== EXIT_ROUTE && ipv4CidrWithin(prefix, r.prefix))).toBe(
              true,
            );
            // EXIT_ROUTE access is the exit route alone: it opens no subnet.
            expect(access.some((r) => r.prefix !== EXIT_ROUTE && ipv4CidrWithin(prefix, r.prefix))).toBe(
              true,
            );
            expect(c.acceptRoutes).toBe(true);
            expect(s.kernelRoutes).toContain(prefix);
            if (c.local) expect(overlaps(c.local, prefix)).toBe(false);
            expect(Number(prefix.split('/')[1])).toBeGreaterThanOrEqual(8);
            for (const r of SPECIAL_RANGES) expect(overlaps(r, prefix)).toBe(false);
            for (const h of c.keepOut) expect(ipv4InCidr(h, prefix)).toBe(false);
            // A dead owner only when no gateway of the prefix is alive (fail closed).
            const row = s.rows.find((r) => r.prefix === prefix)!;
            if (!live(id)) expect(row).toMatchObject({ via: null, reason: 'no live gateway' });
            else expect(row.via).toBe(p.name);
          }
        }
        // Every installed prefix has exactly one owner: none falls through to the exit route.
        expect([...s.kernelRoutes].sort()).toEqual([...owners.keys()].filter((k) => k !== EXIT_ROUTE).sort());
      }),
      { seed: 14, numRuns: 300 },
    );
  });
});

describe('resolveExitNode', () => {
  const oldKey = generateKeyPair();
  const newKey = generateKeyPair();
  const laptop: ExitPeer = {
    id: 'dev-1',
    name: 'laptop',
    dnsName: 'laptop.acme.example',
    address: '100.64.0.9',
    publicKey: oldKey.publicKey,
    online: true,
    routes: [{ prefix: EXIT_ROUTE, since: 1 }],
  };
  const pin = { id: 'dev-1', publicKey: oldKey.publicKey };
  /** Another device that took the name (and address) after the chosen one was removed. */
  const impostor: ExitPeer = { ...laptop, id: 'dev-2', publicKey: newKey.publicKey };

  it('resolves a fresh choice by name, DNS name or address and gives the pin to keep', () => {
    for (const wanted of ['laptop', 'laptop.acme.example.', '100.64.0.9'])
      expect(resolveExitNode(wanted, null, [laptop])).toEqual({ peer: laptop, pin });
    expect(resolveExitNode('nope', null, [laptop])).toEqual({ peer: null, unavailable: 'not-found' });
  });

  it('follows the pinned device by id, renamed or not', () => {
    expect(resolveExitNode('laptop', pin, [laptop])).toEqual({ peer: laptop, pin });
    const renamed = { ...laptop, name: 'old-laptop', address: '100.64.0.10' };
    expect(resolveExitNode('laptop', pin, [impostor, renamed])).toEqual({ peer: renamed, pin });
  });

  it('fails closed when another device now has the name of the pinned one', () => {
    expect(resolveExitNode('laptop', pin, [impostor])).toEqual({ peer: null, unavailable: 'replaced' });
    expect(resolveExitNode('100.64.0.9', pin, [impostor])).toEqual({ peer: null, unavailable: 'replaced' });
    expect(resolveExitNode('laptop', pin, [])).toEqual({ peer: null, unavailable: 'not-found' });
  });

  it("fails closed when the pinned device's key changed without proof", () => {
    const swapped = { ...laptop, publicKey: newKey.publicKey };
    expect(resolveExitNode('laptop', pin, [swapped])).toEqual({ peer: null, unavailable: 'key-changed' });
    // A proof that names another previous key, or is signed by the wrong key, is none.
    const rotation = {
      deviceId: 'dev-1',
      address: '100.64.0.9',
      previousKey: oldKey.publicKey,
      newKey: newKey.publicKey,
    };
    const forged = signKeyRotation(newKey.privateKey, { ...rotation, previousKey: newKey.publicKey });
    for (const keyChange of [
      { kind: 'rotated' as const, previousKey: oldKey.publicKey, signature: forged },
      { kind: 'rekeyed' as const, previousKey: newKey.publicKey, at: '2026-12-01T00:00:00.000Z' },
    ])
      expect(resolveExitNode('laptop', pin, [{ ...swapped, keyChange }])).toEqual({
        peer: null,
        unavailable: 'key-changed',
      });
  });

  it('moves the pin along with a signed rotation or an admin re-key, as peer pins do', () => {
    const rotation = {
      deviceId: 'dev-1',
      address: '100.64.0.9',
      previousKey: oldKey.publicKey,
      newKey: newKey.publicKey,
    };
    const signature = signKeyRotation(oldKey.privateKey, rotation);
    const newPin = { id: 'dev-1', publicKey: newKey.publicKey };
    const rotated = {
      ...laptop,
      publicKey: newKey.publicKey,
      keyChange: { kind: 'rotated' as const, previousKey: oldKey.publicKey, signature },
    };
    expect(resolveExitNode('laptop', pin, [rotated])).toEqual({ peer: rotated, pin: newPin });
    const rekeyed = {
      ...laptop,
      publicKey: newKey.publicKey,
      keyChange: { kind: 'rekeyed' as const, previousKey: oldKey.publicKey, at: '2026-12-01T00:00:00.000Z' },
    };
    expect(resolveExitNode('laptop', pin, [rekeyed])).toEqual({ peer: rekeyed, pin: newPin });
  });
});
