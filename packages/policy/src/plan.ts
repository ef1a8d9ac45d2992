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

/** Devices with the same class under both policies, and what changes between bundles. */
interface Comparison {
  bundles: PolicyDevice[][];
  /** Between a device of `viewers` and one of `peers` (another one when they are the same bundle). */
  diff(viewers: PolicyDevice[], peers: PolicyDevice[]): BundleDiff | null;
}

interface BundleDiff {
  out: { gain: PortSet; loss: PortSet };
  in: { gain: PortSet; loss: PortSet };
}

/**
 * Devices are bundled by their (old class, new class) pair, so the comparisons scale with the
 * classes: two devices of one bundle see everything the same under both policies.
 */
function compare(oldPolicy: Policy, newPolicy: Policy, devices: readonly PolicyDevice[]): Comparison {
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
  const ports = (from: PolicyDevice, to: PolicyDevice) => {
    const old = before.openSet(from.id, to.id);
    const now = after.openSet(from.id, to.id);
    return { gain: difference(now, old), loss: difference(old, now) };
  };
  return {
    bundles: [...bundles.values()],
    diff(viewers, peers) {
      const rep = viewers[0]!;
      // Relations within a bundle hold between distinct devices: take two when there are two.
      const peer = peers.find((p) => p.id !== rep.id);
      return peer ? { out: ports(rep, peer), in: ports(peer, rep) } : null;
    },
  };
}

const changes = (d: BundleDiff | null) =>
  d !== null && [d.out.gain, d.out.loss, d.in.gain, d.in.loss].some((s) => !isEmpty(s));

/**
 * What replacing `oldPolicy` with `newPolicy` changes for each device: the peers and ports it
 * gains and loses, both directions. Devices without a change are left out.
 */
export function planPolicy(
  oldPolicy: Policy,
  newPolicy: Policy,
  devices: readonly PolicyDevice[],
): PlanEntry[] {
  const { bundles, diff } = compare(oldPolicy, newPolicy, devices);
  const plan: PlanEntry[] = [];
  for (const viewers of bundles) {
    const pairs = bundles.map((peers) => ({ peers, d: diff(viewers, peers) }));
    if (!pairs.some((p) => changes(p.d))) continue;
    for (const v of viewers) {
      const gains = new Map<string, PlanChange>();
      const losses = new Map<string, PlanChange>();
      for (const { peers, d } of pairs) {
        if (!changes(d)) continue;
        const names = peers.filter((x) => x.id !== v.id).map((x) => x.name);
        if (names.length === 0) continue;
        for (const direction of ['in', 'out'] as const) {
          add(gains, direction, d![direction].gain, names);
          add(losses, direction, d![direction].loss, names);
        }
      }
      if (gains.size + losses.size === 0) continue;
      plan.push({ device: v.name, deviceId: v.id, gains: finish(gains), losses: finish(losses) });
    }
  }
  return plan.sort((a, b) => cmp(a.device, b.device) || cmp(a.deviceId, b.deviceId));
}

/** How many devices `planPolicy` would list, without listing their peers (what apply reports). */
export function countPlannedDevices(
  oldPolicy: Policy,
  newPolicy: Policy,
  devices: readonly PolicyDevice[],
): number {
  const { bundles, diff } = compare(oldPolicy, newPolicy, devices);
  let n = 0;
  for (const viewers of bundles) {
    if (bundles.some((peers) => changes(diff(viewers, peers)))) n += viewers.length;
  }
  return n;
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
