import type {
  DeviceInfo,
  PathChangedEvent,
  TopologyEdge,
  TopologyNode,
  TopologyResponse,
} from '@trellis/proto';

/**
 * The topology as the page holds it, and how live events change it. Pure functions: the page keeps
 * the result in state; each returns `null` when the event names a device the page does not know
 * (a member's new peer), and the page fetches the whole topology again.
 */
export type Topology = TopologyResponse;

export const pairOf = (e: Pick<TopologyEdge, 'a' | 'b'>) => (e.a < e.b ? `${e.a}|${e.b}` : `${e.b}|${e.a}`);

export function applyPathEvent(t: Topology, ev: PathChangedEvent): Topology | null {
  const known = new Set(t.nodes.map((n) => n.id));
  if (ev.edges.some((e) => !known.has(e.a) || !known.has(e.b))) return null;
  const changed = new Set([...ev.edges, ...ev.gone].map(pairOf));
  const edges = t.edges.filter((e) => !changed.has(pairOf(e)));
  return { nodes: t.nodes, edges: [...edges, ...ev.edges] };
}

/** A device the user may see was added or changed; offline, its paths end. */
export function applyDevice(t: Topology, d: DeviceInfo): Topology {
  const had = t.nodes.find((n) => n.id === d.id);
  const node: TopologyNode = {
    id: d.id,
    name: d.name,
    address: d.address,
    online: d.online,
    owner: d.user,
    peerOnly: false,
  };
  const nodes = had ? t.nodes.map((n) => (n.id === d.id ? node : n)) : [...t.nodes, node];
  const edges = d.online ? t.edges : t.edges.filter((e) => e.a !== d.id && e.b !== d.id);
  return { nodes, edges };
}

export function removeDevice(t: Topology, id: string): Topology {
  return {
    nodes: t.nodes.filter((n) => n.id !== id),
    edges: t.edges.filter((e) => e.a !== id && e.b !== id),
  };
}

/** One peer's path as seen from a device, for the list beside the picture. */
export interface PeerPath {
  peer: TopologyNode;
  edge: TopologyEdge;
}

/** The paths of one device, by peer name. */
export function pathsOf(t: Topology, id: string): PeerPath[] {
  const byId = new Map(t.nodes.map((n) => [n.id, n]));
  const out: PeerPath[] = [];
  for (const edge of t.edges) {
    const other = edge.a === id ? edge.b : edge.b === id ? edge.a : null;
    const peer = other === null ? undefined : byId.get(other);
    if (peer) out.push({ peer, edge });
  }
  return out.sort((x, y) => x.peer.name.localeCompare(y.peer.name));
}
