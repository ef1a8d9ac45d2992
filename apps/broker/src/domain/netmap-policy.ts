import { type AccessRules, ALLOW_ALL, type DeviceState } from '@trellis/proto';

/** What one device may open on another and the reverse, as the viewer's netmap carries it. */
export interface PeerRelation {
  /** What the peer may open on the viewer. */
  in: AccessRules;
  /** What the viewer may open on the peer. */
  out: AccessRules;
  /** `JSON(in)|JSON(out)` of the canonical rules, when the policy made it once for all pairs. */
  key?: string;
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

const EVERYTHING: PeerRelation = {
  in: ALLOW_ALL,
  out: ALLOW_ALL,
  key: `${JSON.stringify(ALLOW_ALL)}|${JSON.stringify(ALLOW_ALL)}`,
};

/** No policy: every device sees every other one and may open everything (one class). */
export class AllowAllPolicy implements NetmapPolicy {
  private readonly ids = new Set<string>();

  classOf(id: string): number | undefined {
    return this.ids.has(id) ? 0 : undefined;
  }

  relation(): PeerRelation {
    return EVERYTHING;
  }

  upsert(state: DeviceState): void {
    this.ids.add(state.id);
  }

  remove(id: string): void {
    this.ids.delete(id);
  }
}

const keyOf = (r: PeerRelation) => r.key ?? `${JSON.stringify(r.in)}|${JSON.stringify(r.out)}`;

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
