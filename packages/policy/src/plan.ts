import type { ClassAccess } from './class-access';
import { CompiledPolicy } from './compile';
import { difference, formatPortSet, fromAccessRules, isEmpty, NOTHING, type PortSet } from './ports';
import { RuleChange } from './rule-change';
import type { Policy, PolicyDevice } from './types';

/** Peers that gain or lose the same ports in one direction. */
export interface PlanChange {
  /** `in`: what those peers may open on the device; `out`: what the device may open on them. */
  direction: 'in' | 'out';
  /** Peer names, sorted. */
  peers: string[];
  ports: PortSet;
  /**
   * A routed destination: the ports are on addresses in it, reached through those peers (`out`),
   * or through this device by those peers (`in`).
   */
  prefix?: string;
  /** `ports` for people, e.g. `tcp 22; icmp`, or `via 192.168.1.0/24: tcp 80`. */
  text: string;
}

export interface PlanEntry {
  device: string;
  deviceId: string;
  gains: PlanChange[];
  losses: PlanChange[];
}

interface Delta {
  gain: PortSet;
  loss: PortSet;
}

interface BundleDiff {
  out: Delta;
  in: Delta;
  /** Per routed destination whose access changed. */
  routes: ({ direction: 'in' | 'out'; prefix: string } & Delta)[];
}

/**
 * Two policies over the same devices. Devices are bundled by their (old class, new class) pair,
 * so the comparisons scale with the classes: two devices of one bundle see everything the same
 * under both policies. Where only rules differ, a pair of bundles that no added or removed rule
 * touches is skipped without computing either relation.
 */
export class PolicyComparison {
  private readonly before: CompiledPolicy;
  private readonly after: CompiledPolicy;
  private readonly change: RuleChange | undefined;
  readonly bundles: PolicyDevice[][];
  private changed: number | undefined;

  constructor(oldPolicy: Policy, newPolicy: Policy, devices: readonly PolicyDevice[]) {
    this.before = new CompiledPolicy(oldPolicy, devices);
    this.after = new CompiledPolicy(newPolicy, devices);
    this.change = RuleChange.between(oldPolicy, newPolicy);
    const bundles = new Map<string, PolicyDevice[]>();
    for (const d of devices) {
      if (this.before.device(d.id) !== d) continue; // a repeated id: the last record counts
      const key = `${this.before.classOf(d.id)}/${this.after.classOf(d.id)}`;
      const list = bundles.get(key);
      if (list) list.push(d);
      else bundles.set(key, [d]);
    }
    this.bundles = [...bundles.values()];
  }

  /** Between a device of `viewers` and one of `peers` (another one when they are the same bundle). */
  diff(viewers: PolicyDevice[], peers: PolicyDevice[]): BundleDiff | null {
    const rep = viewers[0]!;
    // Relations within a bundle hold between distinct devices: take two when there are two.
    const peer = peers.find((p) => p.id !== rep.id);
    if (!peer) return null;
    const { before, after } = this;
    if (this.change && !this.touched(rep.id, peer.id) && !this.touched(peer.id, rep.id)) return null;
    // Most pairs of bundles keep their relations: compared as interned text, no sets made.
    const was = before.classAccess(before.classOf(rep.id)!, before.classOf(peer.id)!);
    const is = after.classAccess(after.classOf(rep.id)!, after.classOf(peer.id)!);
    if (sameAccess(was, is)) return null;
    return {
      out: this.ports(rep, peer),
      in: this.ports(peer, rep),
      routes: [...routeDeltas('out', was, is), ...routeDeltas('in', was, is)],
    };
  }

  private touched(from: string, to: string): boolean {
    const { before, after } = this;
    const [oldFrom, oldTo] = [before.viewOfDevice(from)!, before.viewOfDevice(to)!];
    return this.change!.touches(oldFrom, oldTo, after.viewOfDevice(from)!, after.viewOfDevice(to)!);
  }

  /** Counts the changed devices a viewer bundle per step; then changedDevices() answers at once. */
  *countChanges(): Generator<void, void, void> {
    let n = 0;
    for (const viewers of this.bundles) {
      if (this.bundles.some((peers) => changes(this.diff(viewers, peers)))) n += viewers.length;
      yield;
    }
    this.changed = n;
  }

  /** How many devices `planPolicy` lists, without listing their peers (what apply reports). */
  changedDevices(): number {
    if (this.changed === undefined) for (const _ of this.countChanges());
    return this.changed!;
  }

  private ports(from: PolicyDevice, to: PolicyDevice) {
    const old = this.before.openSet(from.id, to.id);
    const now = this.after.openSet(from.id, to.id);
    return { gain: difference(now, old), loss: difference(old, now) };
  }
}

const sameAccess = (a: ClassAccess | null, b: ClassAccess | null) =>
  a === null || b === null
    ? a === b
    : a.in.json === b.in.json &&
      a.out.json === b.out.json &&
      a.routesIn.json === b.routesIn.json &&
      a.routesOut.json === b.routesOut.json;

const changes = (d: BundleDiff | null) =>
  d !== null &&
  ([d.out.gain, d.out.loss, d.in.gain, d.in.loss].some((s) => !isEmpty(s)) || d.routes.length > 0);

/** What changed per routed destination in one direction, between two class pairs. */
function routeDeltas(direction: 'in' | 'out', was: ClassAccess | null, is: ClassAccess | null) {
  const key = direction === 'in' ? 'routesIn' : 'routesOut';
  const sets = (a: ClassAccess | null) =>
    new Map((a?.[key].list ?? []).map((r) => [r.prefix, fromAccessRules(r.rules)]));
  const [old, now] = [sets(was), sets(is)];
  const prefixes = [...new Set([...old.keys(), ...now.keys()])].sort();
  return prefixes
    .map((prefix) => {
      const [o, n] = [old.get(prefix) ?? NOTHING, now.get(prefix) ?? NOTHING];
      return { direction, prefix, gain: difference(n, o), loss: difference(o, n) };
    })
    .filter((r) => !isEmpty(r.gain) || !isEmpty(r.loss));
}

/**
 * What replacing `oldPolicy` with `newPolicy` changes for each device: the peers and ports it
 * gains and loses, both directions. Devices without a change are left out.
 */
export function planPolicy(
  oldPolicy: Policy,
  newPolicy: Policy,
  devices: readonly PolicyDevice[],
): PlanEntry[] {
  const comparison = new PolicyComparison(oldPolicy, newPolicy, devices);
  const { bundles } = comparison;
  const plan: PlanEntry[] = [];
  for (const viewers of bundles) {
    const pairs = bundles.map((peers) => ({ peers, d: comparison.diff(viewers, peers) }));
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
        for (const r of d!.routes) {
          add(gains, r.direction, r.gain, names, r.prefix);
          add(losses, r.direction, r.loss, names, r.prefix);
        }
      }
      if (gains.size + losses.size === 0) continue;
      plan.push({ device: v.name, deviceId: v.id, gains: finish(gains), losses: finish(losses) });
    }
  }
  return plan.sort((a, b) => cmp(a.device, b.device) || cmp(a.deviceId, b.deviceId));
}

function add(
  into: Map<string, PlanChange>,
  direction: 'in' | 'out',
  ports: PortSet,
  names: string[],
  prefix?: string,
): void {
  if (isEmpty(ports)) return;
  const key = `${direction}|${prefix ?? ''}|${JSON.stringify(ports)}`;
  const change = into.get(key);
  if (change) change.peers.push(...names);
  else {
    const text = prefix === undefined ? formatPortSet(ports) : `via ${prefix}: ${formatPortSet(ports)}`;
    into.set(key, { direction, peers: [...names], ports, ...(prefix === undefined ? {} : { prefix }), text });
  }
}

function finish(changes: Map<string, PlanChange>): PlanChange[] {
  return [...changes.values()]
    .map((c) => ({ ...c, peers: c.peers.sort(cmp) }))
    .sort((a, b) => cmp(a.direction, b.direction) || cmp(a.text, b.text));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
