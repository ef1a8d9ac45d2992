import { CompiledPolicy } from './compile';
import { difference, formatPortSet, isEmpty, type PortSet } from './ports';
import type { Policy, PolicyDevice } from './types';

/** Peers that gain or lose the same ports in one direction. */
export interface PlanChange {
  /** `in`: what those peers may open on the device; `out`: what the device may open on them. */
  direction: 'in' | 'out';
  /** Peer names, sorted. */
  peers: string[];
  ports: PortSet;
  /** `ports` for people, e.g. `tcp 22; icmp`. */
  text: string;
}

export interface PlanEntry {
  device: string;
  deviceId: string;
  gains: PlanChange[];
  losses: PlanChange[];
}

/**
 * What replacing `oldPolicy` with `newPolicy` changes for each device: the peers and ports it
 * gains and loses, both directions. Devices without a change are left out. Devices are bundled by
 * their (old class, new class) pair, so the comparisons scale with the classes.
 */
export function planPolicy(
  oldPolicy: Policy,
  newPolicy: Policy,
  devices: readonly PolicyDevice[],
): PlanEntry[] {
  const before = new CompiledPolicy(oldPolicy, devices);
  const after = new CompiledPolicy(newPolicy, devices);
  const bundles = new Map<string, PolicyDevice[]>();
  for (const d of devices) {
    if (before.device(d.id) !== d) continue; // a repeated id: the last record counts
    const key = `${before.classOf(d.id)}/${after.classOf(d.id)}`;
    const list = bundles.get(key);
    if (list) list.push(d);
    else bundles.set(key, [d]);
  }
  const all = [...bundles.values()];
  const diff = (from: PolicyDevice, to: PolicyDevice) => {
    const old = before.openSet(from.id, to.id);
    const now = after.openSet(from.id, to.id);
    return { gain: difference(now, old), loss: difference(old, now) };
  };

  const plan: PlanEntry[] = [];
  for (const viewers of all) {
    const rep = viewers[0]!;
    const pairs = all.map((peers) => {
      // Relations within a bundle hold between distinct devices: take two when there are two.
      const peer = peers.find((p) => p.id !== rep.id);
      return peer ? { peers, out: diff(rep, peer), in: diff(peer, rep) } : null;
    });
    for (const v of viewers) {
      const gains = new Map<string, PlanChange>();
      const losses = new Map<string, PlanChange>();
      for (const p of pairs) {
        if (!p) continue;
        const names = p.peers.filter((x) => x.id !== v.id).map((x) => x.name);
        if (names.length === 0) continue;
        for (const direction of ['in', 'out'] as const) {
          add(gains, direction, p[direction].gain, names);
          add(losses, direction, p[direction].loss, names);
        }
      }
      if (gains.size + losses.size === 0) continue;
      plan.push({ device: v.name, deviceId: v.id, gains: finish(gains), losses: finish(losses) });
    }
  }
  return plan.sort((a, b) => cmp(a.device, b.device) || cmp(a.deviceId, b.deviceId));
}

function add(into: Map<string, PlanChange>, direction: 'in' | 'out', ports: PortSet, names: string[]): void {
  if (isEmpty(ports)) return;
  const key = `${direction}|${JSON.stringify(ports)}`;
  const change = into.get(key);
  if (change) change.peers.push(...names);
  else into.set(key, { direction, peers: [...names], ports, text: formatPortSet(ports) });
}

function finish(changes: Map<string, PlanChange>): PlanChange[] {
  return [...changes.values()]
    .map((c) => ({ ...c, peers: c.peers.sort(cmp) }))
    .sort((a, b) => cmp(a.direction, b.direction) || cmp(a.text, b.text));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
