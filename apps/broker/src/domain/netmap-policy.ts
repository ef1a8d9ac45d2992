import { type AccessRules, ALLOW_ALL, type DeviceState, type RouteAccess } from '@trellis/proto';

/** What one device may open on another and the reverse, as the viewer's netmap carries it. */
export interface PeerRelation {
  /** What the peer may open on the viewer. */
  in: AccessRules;
  /** What the viewer may open on the peer. */
  out: AccessRules;
  /** What the viewer may reach through the peer's routes (absent: nothing). */
  routesOut?: RouteAccess[];
  /** What the peer may reach through the viewer's routes (absent: nothing). */
  routesIn?: RouteAccess[];
  /**
   * `JSON(in)|JSON(out)|JSON(routesIn)|JSON(routesOut)` of the canonical lists (absent ones as
   * `[]`), when the policy made it once for all pairs.
   */
  key?: string;
}

/** The prefixes a device serves as far as the policy is concerned: approved ones (up or down). */
export function servedRoutes(state: DeviceState): string[] {
  return (state.routes ?? []).filter((r) => r.approved).map((r) => r.prefix);
}

/**
 * The access policy as the netmap uses it. Devices fall into classes: two devices of one class are
 * treated alike by every rule, so what a viewer sees of a peer depends on their two classes only,
 * and the netmap's work per change is per class, not per pair of devices.
 */
export interface NetmapPolicy {
  /** The device's class (undefined: not known to the policy). */
  classOf(id: string): number | undefined;
  /** What a device of `viewer` class sees of one of `peer` class; null: they do not see each other. */
  relation(viewer: number, peer: number): PeerRelation | null;
  /** A device was added or changed (its tags, name, user or address may move it to another class). */
  upsert(state: DeviceState): void;
  remove(id: string): void;
  /**
   * For a policy replacing `before`: a test that is true when a pair is surely seen the same under
   * both, given the viewer's and the peer's class under `before` and under this one. Undefined
   * when there is no such shortcut (every pair is compared).
   */
  unchangedSince?(before: NetmapPolicy): UnchangedTest | undefined;
}

export type UnchangedTest = (viewerWas: number, peerWas: number, viewerIs: number, peerIs: number) => boolean;

const keyOf = (r: PeerRelation) =>
  r.key ?? [r.in, r.out, r.routesIn ?? [], r.routesOut ?? []].map((x) => JSON.stringify(x)).join('|');

/**
 * No policy: every device sees every other one and may open everything, through its routes too.
 * Classes: devices serving no approved route (0) and one per distinct list of served routes, so
 * route lists go only to the pairs they concern. A gateway's routes are listed by name, as the
 * default policy's `*` gives them: EXIT_ROUTE on the wire is the exit route alone.
 */
export class AllowAllPolicy implements NetmapPolicy {
  private readonly classes = new Map<string, number>();
  /** Class -> its members' routes, each open to everything ([] for class 0). */
  private readonly routesOf: RouteAccess[][] = [[]];
  private readonly classByRoutes = new Map<string, number>([['', 0]]);
  private readonly relations = new Map<string, PeerRelation>();

  classOf(id: string): number | undefined {
    return this.classes.get(id);
  }

  relation(viewer: number, peer: number): PeerRelation {
    const id = `${viewer} ${peer}`;
    let r = this.relations.get(id);
    if (!r) {
      const out = this.routesOf[peer]!;
      const inn = this.routesOf[viewer]!;
      r = {
        in: ALLOW_ALL,
        out: ALLOW_ALL,
        ...(out.length > 0 ? { routesOut: out } : {}),
        ...(inn.length > 0 ? { routesIn: inn } : {}),
      };
      r.key = keyOf(r);
      this.relations.set(id, r);
    }
    return r;
  }

  upsert(state: DeviceState): void {
    const routes = [...new Set(servedRoutes(state))].sort();
    const key = routes.join(' ');
    let cls = this.classByRoutes.get(key);
    if (cls === undefined) {
      cls = this.routesOf.length;
      this.routesOf.push(routes.map((prefix) => ({ prefix, rules: ALLOW_ALL })));
      this.classByRoutes.set(key, cls);
    }
    this.classes.set(state.id, cls);
  }

  remove(id: string): void {
    this.classes.delete(id);
  }
}

export function sameRelation(a: PeerRelation | null, b: PeerRelation | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return keyOf(a) === keyOf(b);
}

/** Peers whose relation to a group of viewers changed: `old` and `now` are null where unseen. */
export interface PeerGroupChange {
  peers: readonly string[];
  old: PeerRelation | null;
  now: PeerRelation | null;
}

/** Viewers that see the same change: one group of devices, and what changed for them. */
export interface ViewChange {
  viewers: readonly string[];
  changes: PeerGroupChange[];
}

/**
 * What changes in each device's view when `before` is replaced by `after`. Devices with the same
 * class under both policies see the same, so the comparison runs over those joint classes, not
 * over pairs of devices: a policy change costs (joint classes)² relations plus one pass over the
 * devices (pairs the new policy says are unchanged are not even looked up). Only viewer groups
 * with a change are listed. A device never sees itself: a group's
 * changes may list the viewer itself (its own group), which the caller leaves out.
 */
export function viewChanges(ids: Iterable<string>, before: NetmapPolicy, after: NetmapPolicy): ViewChange[] {
  const joint = new Map<string, { was: number | undefined; is: number | undefined; members: string[] }>();
  for (const id of ids) {
    const was = before.classOf(id);
    const is = after.classOf(id);
    const key = `${was}/${is}`;
    const group = joint.get(key);
    if (group) group.members.push(id);
    else joint.set(key, { was, is, members: [id] });
  }
  const groups = [...joint.values()];
  const unchanged = after.unchangedSince?.(before);
  const out: ViewChange[] = [];
  for (const viewer of groups) {
    const changes: PeerGroupChange[] = [];
    for (const peer of groups) {
      // A class of one has no peer inside it.
      if (peer === viewer && peer.members.length < 2) continue;
      const { was: vw, is: vi } = viewer;
      const { was: pw, is: pi } = peer;
      if (unchanged && vw !== undefined && pw !== undefined && vi !== undefined && pi !== undefined) {
        if (unchanged(vw, pw, vi, pi)) continue;
      }
      const old =
        viewer.was === undefined || peer.was === undefined ? null : before.relation(viewer.was, peer.was);
      const now =
        viewer.is === undefined || peer.is === undefined ? null : after.relation(viewer.is, peer.is);
      if (!sameRelation(old, now)) changes.push({ peers: peer.members, old, now });
    }
    if (changes.length > 0) out.push({ viewers: viewer.members, changes });
  }
  return out;
}

/** The devices whose view changes when `before` is replaced by `after`. */
export function affectedViewers(
  ids: Iterable<string>,
  before: NetmapPolicy,
  after: NetmapPolicy,
): Set<string> {
  const affected = new Set<string>();
  for (const v of viewChanges(ids, before, after)) {
    for (const id of v.viewers) {
      // The only change of a group of two may be the viewer itself: nothing for it.
      if (v.changes.some((c) => c.peers.some((p) => p !== id))) affected.add(id);
    }
  }
  return affected;
}
