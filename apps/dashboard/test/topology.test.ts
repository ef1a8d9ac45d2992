import type { DeviceInfo, TopologyEdge, TopologyResponse } from '@trellis/proto';
import { circleLayout, slotCount } from '../src/pages/topology-layout';
import { applyDevice, applyPathEvent, pathsOf, removeDevice } from '../src/pages/topology-state';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const node = (n: number, online = true) => ({
  id: id(n),
  name: `dev${n}`,
  address: `100.64.0.${n}`,
  online,
  owner: null,
  peerOnly: false,
});
const since = '2026-01-01T00:00:00.000Z';
const edge = (
  a: number,
  b: number,
  kind: TopologyEdge['kind'],
  relay: string | null = null,
): TopologyEdge => ({
  a: id(Math.min(a, b)),
  b: id(Math.max(a, b)),
  kind,
  relay,
  since,
});

describe('topology state (live events applied to what the page shows)', () => {
  const base: TopologyResponse = { nodes: [node(1), node(2), node(3)], edges: [edge(1, 2, 'connecting')] };

  it('a path event replaces the pairs it names and drops the gone ones', () => {
    const next = applyPathEvent(base, {
      edges: [edge(1, 2, 'direct'), edge(2, 3, 'relayed', 'r1')],
      gone: [],
    })!;
    expect(next.edges).toEqual([edge(1, 2, 'direct'), edge(2, 3, 'relayed', 'r1')]);
    const gone = applyPathEvent(next, { edges: [], gone: [{ a: id(2), b: id(1) }] })!;
    expect(gone.edges).toEqual([edge(2, 3, 'relayed', 'r1')]);
  });

  it('a path to a device the page does not know asks for a reload (null)', () => {
    expect(applyPathEvent(base, { edges: [edge(1, 9, 'direct')], gone: [] })).toBeNull();
  });

  it('a device going offline loses its paths; a new one is added; a removed one goes with its paths', () => {
    const info = (n: number, online: boolean): DeviceInfo => ({
      ...node(n, online),
      dnsName: `dev${n}.default.mesh`,
      hostname: 'h',
      os: 'linux',
      publicKey: `${'A'.repeat(43)}=`,
      via: null,
      lanAddress: null,
      endpoints: [],
      lastSeen: null,
      createdAt: since,
      tags: [],
      user: 'ann@example.com',
      approved: true,
    });
    const off = applyDevice(base, info(2, false));
    expect(off.edges).toEqual([]);
    expect(off.nodes.find((n) => n.id === id(2))).toMatchObject({ online: false, owner: 'ann@example.com' });
    expect(applyDevice(base, info(4, true)).nodes).toHaveLength(4);
    expect(removeDevice(base, id(1))).toEqual({ nodes: [node(2), node(3)], edges: [] });
  });

  it('lists a device’s path to each peer, by peer name', () => {
    const t = {
      nodes: base.nodes,
      edges: [edge(1, 3, 'direct'), edge(1, 2, 'relayed', 'r1'), edge(2, 3, 'direct')],
    };
    expect(pathsOf(t, id(1)).map((p) => [p.peer.name, p.edge.kind])).toEqual([
      ['dev2', 'relayed'],
      ['dev3', 'direct'],
    ]);
  });
});

describe('circle layout', () => {
  it('is the same whatever the order, with every node in its own place', () => {
    const nodes = Array.from({ length: 12 }, (_, i) => ({ id: id(i + 1) }));
    const one = circleLayout(nodes);
    const two = circleLayout([...nodes].reverse());
    expect(two).toEqual(one);
    expect(new Set([...one.placed.values()].map((p) => `${p.x},${p.y}`)).size).toBe(12);
    for (const p of one.placed.values()) {
      expect(p.x).toBeGreaterThan(0);
      expect(p.x).toBeLessThan(one.size);
      expect(p.y).toBeGreaterThan(0);
      expect(p.y).toBeLessThan(one.size);
    }
  });

  it('keeps devices where they were when one comes or goes (while the slots suffice)', () => {
    const before = circleLayout(Array.from({ length: 5 }, (_, i) => ({ id: id(i + 1) })));
    let moved = 0;
    let kept = 0;
    for (let extra = 100; extra < 110; extra++) {
      const after = circleLayout([
        ...Array.from({ length: 5 }, (_, i) => ({ id: id(i + 1) })),
        { id: id(extra) },
      ]);
      expect(slotCount(6)).toBe(slotCount(5));
      for (const [k, p] of before.placed) {
        if (JSON.stringify(after.placed.get(k)) === JSON.stringify(p)) kept++;
        else moved++;
      }
    }
    // Only a newcomer taking a slot first in id order can push a device one slot on.
    expect(moved).toBeLessThanOrEqual(kept / 10);
  });
});
