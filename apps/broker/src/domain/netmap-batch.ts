import type { DeltaMessage, NetmapPeer, NetmapSelf, PeerAccess } from '@trellis/proto';
import { Json, type Spliced } from './json-frame';
import type { PeerGroupChange, PeerRelation } from './netmap-policy';

/** What a delta says besides its type and serial; built once per batch and viewer class. */
export type DeltaBody = Spliced<Omit<DeltaMessage, 'type' | 'serial'>>;

/** Changes collected since the last flush: last write wins per device. */
export interface ChangeBatch {
  upserts: Map<string, Json<NetmapPeer>>;
  removes: Set<string>;
  /** Devices whose view of themselves (reflexive addresses, NAT type) changed. */
  selfChanged: Set<string>;
  /**
   * Viewer classes that could see each changed device in any state it had during the batch, before
   * its last change: a device that connected meanwhile got a snapshot of one of those states.
   */
  seenDuring: Map<string, Set<number>>;
  /** Devices that need their whole netmap again: their own class changed. */
  resnapshot: Set<string>;
  /** Delta bodies for viewers outside the batch, one per viewer class (null: nothing to send). */
  sharedBodies: Map<number, DeltaBody | null>;
}

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
    seenDuring: new Map(),
    resnapshot: new Set(),
    sharedBodies: new Map(),
  };
}

/** The frame a connected device gets for a batch: a delta, or its whole netmap again. */
export type BatchFrame = { type: 'netmap' | 'delta'; frame: string };

/** What a delta body needs of the account: its devices' policy classes and what they open. */
export interface BodyContext {
  classOf(peerId: string): number;
  relation(viewerCls: number, peerCls: number): PeerRelation | null;
}

/** Whom a body is for: a class (viewers outside the batch) or one device, with its self if it changed. */
export interface BodyViewer {
  id?: string;
  cls: number;
  self?: NetmapSelf;
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
  const upserts: Json<NetmapPeer>[] = [];
  const removes: string[] = [];
  const byClass = new Map<number, string[]>();
  for (const [peerId, fragment] of batch.upserts) {
    if (peerId === viewer.id) continue;
    const cls = ctx.classOf(peerId);
    if (ctx.relation(viewer.cls, cls) === null) {
      if (couldSee(peerId)) removes.push(peerId);
      continue;
    }
    upserts.push(fragment);
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
  if (upserts.length === 0 && removes.length === 0 && !self) return null;
  return {
    upsert: Json.array(upserts),
    remove: Json.of(removes),
    ...(self ? { self } : {}),
    ...(access.length > 0 ? { access } : {}),
  };
}

/**
 * The delta that takes one viewer of a group (`viewers`) through a policy change: peers it now
 * sees (with their access), peers it no longer sees, and peers whose access changed.
 */
export function policyBody(
  viewerId: string,
  viewers: readonly string[],
  changes: readonly PeerGroupChange[],
  fragmentOf: (peerId: string) => Json<NetmapPeer>,
): DeltaBody | null {
  const upserts: Json<NetmapPeer>[] = [];
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
    if (c.old === null) for (const p of peers) upserts.push(fragmentOf(p));
    access.push(accessEntry([...peers], c.now));
  }
  if (upserts.length === 0 && removes.length === 0 && access.length === 0) return null;
  return {
    upsert: Json.array(upserts),
    remove: Json.of(removes),
    ...(access.length > 0 ? { access } : {}),
  };
}
