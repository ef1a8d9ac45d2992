import type { DeviceInfo, TopologyEdge, TopologyNode, TopologyResponse } from '@trellis/proto';
import type { DevicesService } from '../services/devices.service';
import type { UserContext } from '../services/users.service';
import type { TopologyStore } from './topology-store';

/**
 * What `user` may see of the account's topology. Admins: every device and every path. A member:
 * their own devices, the paths touching them, and the far ends of those paths as `peerOnly` nodes
 * (name, address and online state, which their own device's netmap has anyway; not the owner).
 * A path is shown only while both its devices are online.
 */
export async function topologyFor(
  user: UserContext,
  devices: DevicesService,
  store: TopologyStore,
): Promise<TopologyResponse> {
  const member = user.role === 'member';
  const own = await devices.list(user.accountId, user.accountName, member ? user.email : undefined);
  const nodes = new Map<string, TopologyNode>(own.map((d) => [d.id, node(d, false)]));
  let edges = store.edges(user.accountId);
  if (member) {
    edges = edges.filter((e) => nodes.has(e.a) || nodes.has(e.b));
    const far = new Set(edges.flatMap((e) => [e.a, e.b]).filter((id) => !nodes.has(id)));
    for (const d of await devices.infoOf(user.accountId, [...far])) nodes.set(d.id, node(d, true));
  }
  const live = (id: string) => nodes.get(id)?.online === true;
  return { nodes: [...nodes.values()], edges: edges.filter((e) => live(e.a) && live(e.b)) };
}

/** Whether a watcher who was shown the devices `visible` (null: all, an admin) may see this pair's path. */
export function mayWatchPair(
  visible: ReadonlySet<string> | null,
  edge: Pick<TopologyEdge, 'a' | 'b'>,
): boolean {
  return visible === null || visible.has(edge.a) || visible.has(edge.b);
}

function node(d: DeviceInfo, peerOnly: boolean): TopologyNode {
  return {
    id: d.id,
    name: d.name,
    address: d.address,
    online: d.online,
    owner: peerOnly ? null : d.user,
    peerOnly,
  };
}
