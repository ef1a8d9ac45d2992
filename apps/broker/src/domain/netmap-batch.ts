import type { DeltaMessage, NetmapPeer, NetmapSelf, NetmapVirtual, PeerAccess } from '@trellis/proto';
import { Json, type Spliced } from './json-frame';
import type { PeerGroupChange, PeerRelation, ViewChange } from './netmap-policy';

/** What a delta says besides its type and serial; built once per batch and viewer class. */
export type DeltaBody = Spliced<Omit<DeltaMessage, 'type' | 'serial'>>;

/**
 * A device as other devices' netmaps carry it, serialised once: a peer, or a virtual device
 * (listed apart, in `virtual` / `virtualUpsert`).
 */
export type Fragment =
  | { virtual: false; json: Json<NetmapPeer> }
  | { virtual: true; json: Json<NetmapVirtual> };

/** Fragments sorted into the two lists a netmap or delta carries them in. */
export class FragmentLists {
  readonly peers: Json<NetmapPeer>[] = [];
  readonly virtual: Json<NetmapVirtual>[] = [];

  add(f: Fragment): void {
    if (f.virtual) this.virtual.push(f.json);
    else this.peers.push(f.json);
  }

  get size(): number {
    return this.peers.length + this.virtual.length;
  }

  /** The `virtualUpsert` field, present only when there are any. */
  virtualField(): { virtualUpsert?: Json<NetmapVirtual[]> } {
    return this.virtual.length > 0 ? { virtualUpsert: Json.array(this.virtual) } : {};
  }
}

/** Changes collected since the last flush: last write wins per device. */
export interface ChangeBatch {
  upserts: Map<string, Fragment>;
  removes: Set<string>;
  /** Devices whose view of themselves (reflexive addresses, NAT type) changed. */
  selfChanged: Set<string>;
  /** Upserted devices whose every change in the batch was coming online or going offline. */
  presenceOnly: Set<string>;
  /**
   * Viewer classes that could see each changed device in any state it had during the batch, before
   * its last change: a device that connected meanwhile got a snapshot of one of those states.
   */
  seenDuring: Map<string, Set<number>>;
  /** Devices that need their whole netmap again: their own class changed. */
  resnapshot: Set<string>;
  /**
   * Delta bodies for viewers outside the batch, one per viewer class and form (sharedKey; null:
   * nothing to send).
   */
  sharedBodies: Map<number, DeltaBody | null>;
}

/** The sharedBodies key of a viewer class, compact (capability 3) or not. */
export const sharedKey = (cls: number, compact: boolean) => cls * 2 + (compact ? 1 : 0);

/** A netmap `access` entry: route lists only when there are any. */
export function accessEntry(peers: string[], rel: PeerRelation): PeerAccess {
  return {
    peers,
    in: rel.in,
    out: rel.out,
    ...(rel.routesOut && rel.routesOut.length > 0 ? { routesOut: rel.routesOut } : {}),
    ...(rel.routesIn && rel.routesIn.length > 0 ? { routesIn: rel.routesIn } : {}),
  };
}

export function emptyBatch(): ChangeBatch {
  return {
    upserts: new Map(),
    removes: new Set(),
    selfChanged: new Set(),
    presenceOnly: new Set(),
    seenDuring: new Map(),
    resnapshot: new Set(),
    sharedBodies: new Map(),
  };
}

export type PendingKind = 'none' | 'presence' | 'changes';

export function pendingKind(b: ChangeBatch): PendingKind {
  if (b.removes.size > 0 || b.selfChanged.size > 0 || b.resnapshot.size > 0) return 'changes';
  if (b.upserts.size === 0) return 'none';
  return b.upserts.size === b.presenceOnly.size ? 'presence' : 'changes';
}

/** Records a device's upsert in a batch; `presence`: this change only flipped it online or offline. */
export function noteUpsert(batch: ChangeBatch, id: string, fragment: Fragment, presence: boolean): void {
  batch.removes.delete(id);
  const presenceSoFar = !batch.upserts.has(id) || batch.presenceOnly.has(id);
  if (presence && presenceSoFar) batch.presenceOnly.add(id);
  else batch.presenceOnly.delete(id);
  batch.upserts.set(id, fragment);
}

/** The frame a connected device gets for a batch: a delta, or its whole netmap again. */
export type BatchFrame = { type: 'netmap' | 'delta'; frame: string };

/** What a delta body needs of the account: its devices' policy classes and what they open. */
export interface BodyContext {
  classOf(peerId: string): number;
  online(peerId: string): boolean;
  relation(viewerCls: number, peerCls: number): PeerRelation | null;
}

/** What a snapshot needs besides: each device's fragment, and the devices of each class. */
export interface SnapshotContext extends BodyContext {
  fragmentOf(id: string): Fragment;
  members: ReadonlyMap<number, ReadonlySet<string>>;
}

/** A snapshot's peers, virtual devices and access for a viewer: every member of each class it relates to. */
export function snapshotParts(ctx: SnapshotContext, viewerId: string, viewerCls: number) {
  const lists = new FragmentLists();
  const access: PeerAccess[] = [];
  for (const [cls, ids] of ctx.members) {
    const rel = ctx.relation(viewerCls, cls);
    if (rel === null) continue;
    const seen: string[] = [];
    for (const peerId of ids) {
      if (peerId === viewerId) continue;
      lists.add(ctx.fragmentOf(peerId));
      seen.push(peerId);
    }
    if (seen.length > 0) access.push(accessEntry(seen, rel));
  }
  return { lists, access };
}

/** What `changed` (devices changed since a resumed netmap) is now to a viewer of class `viewerCls`. */
export function resumeBatch(
  ctx: SnapshotContext & { has(id: string): boolean },
  viewerCls: number,
  changed: Iterable<string>,
): ChangeBatch {
  const batch = emptyBatch();
  for (const id of changed) {
    // Gone, or hidden by the policy now: a removal of a peer it does not hold is a no-op there.
    if (!ctx.has(id) || ctx.relation(viewerCls, ctx.classOf(id)) === null) batch.removes.add(id);
    else batch.upserts.set(id, ctx.fragmentOf(id));
  }
  return batch;
}

/**
 * Whom a body is for: a class (viewers outside the batch) or one device, with its self if it
 * changed; `compact`: it takes presence lists (capability 3).
 */
export interface BodyViewer {
  id?: string;
  cls: number;
  self?: NetmapSelf;
  compact?: boolean;
}

/**
 * The delta body of a batch for a viewer, or null when nothing in it concerns the viewer. A peer
 * the viewer may not see is removed only if it could have seen it (`couldSee`): removing a peer
 * it never held is noise.
 */
export function deltaBody(
  ctx: BodyContext,
  batch: ChangeBatch,
  viewer: BodyViewer,
  couldSee = (peerId: string) => batch.seenDuring.get(peerId)?.has(viewer.cls) === true,
): DeltaBody | null {
  const upserts = new FragmentLists();
  const removes: string[] = [];
  const presence = { online: [] as string[], offline: [] as string[] };
  const byClass = new Map<number, string[]>();
  for (const [peerId, fragment] of batch.upserts) {
    if (peerId === viewer.id) continue;
    const cls = ctx.classOf(peerId);
    if (ctx.relation(viewer.cls, cls) === null) {
      if (couldSee(peerId)) removes.push(peerId);
      continue;
    }
    if (viewer.compact && batch.presenceOnly.has(peerId)) {
      presence[ctx.online(peerId) ? 'online' : 'offline'].push(peerId);
      continue;
    }
    upserts.add(fragment);
    const group = byClass.get(cls);
    if (group) group.push(peerId);
    else byClass.set(cls, [peerId]);
  }
  for (const peerId of batch.removes) if (peerId !== viewer.id && couldSee(peerId)) removes.push(peerId);
  const access: PeerAccess[] = [];
  for (const [cls, peers] of byClass) {
    const rel = ctx.relation(viewer.cls, cls)!;
    access.push(accessEntry(peers, rel));
  }
  const { self } = viewer;
  const { online, offline } = presence;
  if (upserts.size === 0 && removes.length === 0 && !self && online.length + offline.length === 0)
    return null;
  return {
    upsert: Json.array(upserts.peers),
    remove: Json.of(removes),
    ...(self ? { self } : {}),
    ...(access.length > 0 ? { access } : {}),
    ...upserts.virtualField(),
    ...(online.length > 0 ? { online } : {}),
    ...(offline.length > 0 ? { offline } : {}),
  };
}

/** For each device whose view changed under a new policy (viewChanges), the delta that takes it there. */
export function policyBodies(
  changes: readonly ViewChange[],
  fragmentOf: (peerId: string) => Fragment,
): Map<string, DeltaBody> {
  const bodies = new Map<string, DeltaBody>();
  for (const { viewers, changes: list } of changes) {
    for (const id of viewers) {
      const body = policyBody(id, viewers, list, fragmentOf);
      if (body) bodies.set(id, body);
    }
  }
  return bodies;
}

/**
 * The delta that takes one viewer of a group (`viewers`) through a policy change: peers it now
 * sees (with their access), peers it no longer sees, and peers whose access changed.
 */
export function policyBody(
  viewerId: string,
  viewers: readonly string[],
  changes: readonly PeerGroupChange[],
  fragmentOf: (peerId: string) => Fragment,
): DeltaBody | null {
  const upserts = new FragmentLists();
  const removes: string[] = [];
  const access: PeerAccess[] = [];
  for (const c of changes) {
    // Only the viewer's own group lists the viewer.
    const peers = c.peers === viewers ? c.peers.filter((p) => p !== viewerId) : c.peers;
    if (peers.length === 0) continue;
    if (c.now === null) {
      removes.push(...peers);
      continue;
    }
    if (c.old === null) for (const p of peers) upserts.add(fragmentOf(p));
    access.push(accessEntry([...peers], c.now));
  }
  if (upserts.size === 0 && removes.length === 0 && access.length === 0) return null;
  return {
    upsert: Json.array(upserts.peers),
    remove: Json.of(removes),
    ...(access.length > 0 ? { access } : {}),
    ...upserts.virtualField(),
  };
}
