import type {
  DeltaMessage,
  DeviceState,
  NetmapMessage,
  NetmapPeer,
  NetmapRelay,
  NetmapSelf,
  PeerAccess,
  ReflectorInfo,
} from '@trellis/proto';
import type { PairDevice } from '../pair-paths/pair-types';
import { deviceCandidates } from './device-candidates';
import { Json, jsonFrame } from './json-frame';
import {
  accessEntry,
  type BatchFrame,
  type BodyContext,
  type BodyViewer,
  type ChangeBatch,
  type DeltaBody,
  deltaBody,
  emptyBatch,
  policyBody,
} from './netmap-batch';
import { NetmapJournal } from './netmap-journal';
import { AllowAllPolicy, type NetmapPolicy, type PeerRelation, viewChanges } from './netmap-policy';
import { sameSelfView, selfOf, servedRoutes } from './netmap-self';

/** DeviceState: what the netmap knows of a device (proto shape, as it travels between instances). */
export type { BatchFrame, ChangeBatch, DeltaBody, DeviceState };

interface Entry {
  state: DeviceState;
  /** The peer serialised once; every snapshot and delta reuses this text. */
  fragment: Json<NetmapPeer>;
  /** Its class under the account's policy (NetmapPolicy). */
  cls: number;
  /** Serial at which it got its class (or came in): a netmap held from before cannot be resumed. */
  classSince: number;
}

/** What a resumed connection needs: the serial of the netmap it holds and where the device stood. */
export interface ResumeFrom {
  /** The journal cursor its last frame carried (the hub's watermark then). */
  cursor: number;
  /** The serial of the netmap it holds (the delta's base). */
  base: number;
}

/**
 * Why a reconnecting device gets a snapshot instead of a delta from the netmap it holds: its token
 * is not this hub's (or an older policy's), the journal no longer reaches back to it, the device got
 * another policy class since, or so much changed that a delta would be about as large.
 */
export type ResumeRefusal = 'token' | 'journal' | 'reclassed' | 'changes';

/** NetmapSelf.relays holds at most this many. */
const MAX_NETMAP_RELAYS = 32;

/**
 * The netmap of one account, kept as pre-serialised peer fragments so that a snapshot is a string
 * join and a change costs one serialisation plus one short frame per connected device. What a device
 * sees of the others is the policy's (NetmapPolicy): by class, so a change is worked out once per
 * class of viewers. It never holds another account's devices.
 */
export class AccountNetmap {
  private readonly entries = new Map<string, Entry>();
  /** The devices of each policy class. */
  private readonly members = new Map<number, Set<string>>();
  private pending: ChangeBatch = emptyBatch();
  /** Highest change serial applied. */
  serial: number;
  /** Relays the account's devices may be sent to (NetmapSelf.relays). */
  private relays: readonly NetmapRelay[] = [];
  /** Which devices changed when: what a reconnecting device missed. */
  readonly journal: NetmapJournal;

  constructor(
    readonly accountName: string,
    readonly zone: string,
    serial = 0,
    /** The endpoint reflectors (the broker's, and a relay's), put into every device's NetmapSelf. */
    private reflectors: readonly ReflectorInfo[] = [],
    private policy: NetmapPolicy = new AllowAllPolicy(),
  ) {
    this.serial = serial;
    this.journal = new NetmapJournal(serial);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The policy the netmaps are filtered with now. */
  get policyInForce(): NetmapPolicy {
    return this.policy;
  }

  get(id: string): DeviceState | undefined {
    return this.entries.get(id)?.state;
  }

  *states(): IterableIterator<DeviceState> {
    for (const e of this.entries.values()) yield e.state;
  }

  /** What the punch coordinator needs of a device: its typed candidates and NAT mapping. */
  punchView(id: string): PairDevice | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const { state } = e;
    return {
      id,
      publicKey: state.publicKey,
      candidates: deviceCandidates(state.endpoints, state.learned ?? []),
      mappingType: state.mappingType,
    };
  }

  dnsName(name: string): string {
    return `${name}.${this.accountName}.${this.zone}`;
  }

  /** Whether `viewer` may see `peer`: the policy lets one of them open something on the other. */
  canSee(viewerId: string, peerId: string): boolean {
    if (viewerId === peerId) return false;
    const v = this.entries.get(viewerId);
    const p = this.entries.get(peerId);
    return v !== undefined && p !== undefined && this.policy.relation(v.cls, p.cls) !== null;
  }

  /** What the policy opens between two devices (null: they do not see each other). */
  relation(viewerId: string, peerId: string): PeerRelation | null {
    const v = this.entries.get(viewerId);
    const p = this.entries.get(peerId);
    if (viewerId === peerId || !v || !p) return null;
    return this.policy.relation(v.cls, p.cls);
  }

  upsert(state: DeviceState, serial?: number): void {
    const peer: NetmapPeer = {
      id: state.id,
      name: state.name,
      dnsName: this.dnsName(state.name),
      publicKey: state.publicKey,
      address: state.address,
      allowedIps: [`${state.address}/32`],
      endpoints: state.endpoints,
      candidates: deviceCandidates(state.endpoints, state.learned ?? []),
      online: state.online,
      ...(state.keyChange ? { keyChange: state.keyChange } : {}),
      ...servedRoutes(state),
    };
    const fragment = Json.of(peer);
    const previous = this.entries.get(state.id);
    this.bump(serial);
    this.noteSeen(state.id, previous?.cls);
    this.policy.upsert(state);
    const cls = this.policy.classOf(state.id) ?? 0;
    const selfChanged = previous !== undefined && !sameSelfView(previous.state, state);
    const reclassed = previous !== undefined && previous.cls !== cls;
    const classSince = previous && !reclassed ? previous.classSince : this.serial;
    this.entries.set(state.id, { state, fragment, cls, classSince });
    if (previous?.cls !== cls) this.moveClass(state.id, previous?.cls, cls);
    // What only the broker uses (the control connection) changes nothing a device sees.
    if (previous && previous.fragment.text === fragment.text && !selfChanged && !reclassed) return;
    this.journal.record(state.id, this.serial, this.entries.size);
    if (reclassed) this.pending.resnapshot.add(state.id);
    if (selfChanged) this.pending.selfChanged.add(state.id);
    this.pending.removes.delete(state.id);
    this.pending.upserts.set(state.id, fragment);
  }

  remove(id: string, serial?: number): void {
    this.bump(serial);
    const previous = this.entries.get(id);
    if (!previous) return;
    this.noteSeen(id, previous.cls);
    this.entries.delete(id);
    this.journal.record(id, this.serial, this.entries.size);
    this.policy.remove(id);
    this.moveClass(id, previous.cls, undefined);
    this.pending.upserts.delete(id);
    this.pending.selfChanged.delete(id);
    this.pending.resnapshot.delete(id);
    this.pending.removes.add(id);
  }

  /**
   * A new policy (already fed every device). Returns, for each device whose view changed, the delta
   * that takes it there: peers it now sees (with their access), peers it no longer sees, and peers
   * whose access changed (access only), so a rule change costs what it changes, not whole netmaps.
   * Call with no changes pending (AccountHub flushes first), and send these before any later batch.
   */
  setPolicy(policy: NetmapPolicy): Map<string, DeltaBody> {
    const changes = viewChanges(this.entries.keys(), this.policy, policy);
    this.policy = policy;
    this.members.clear();
    for (const [id, e] of this.entries) {
      e.cls = policy.classOf(id) ?? 0;
      this.moveClass(id, undefined, e.cls);
    }
    const bodies = new Map<string, DeltaBody>();
    for (const { viewers, changes: list } of changes) {
      for (const id of viewers) {
        const body = policyBody(id, viewers, list, (p) => this.entries.get(p)!.fragment);
        if (body) bodies.set(id, body);
      }
    }
    return bodies;
  }

  /** The `delta` frame of a body from setPolicy. */
  static policyFrame(body: DeltaBody, serial: number, resume?: string): string {
    return jsonFrame<DeltaMessage>({ type: 'delta', serial, resume, ...body });
  }

  /**
   * Before a device changes: the classes that see it in the state it is leaving (`cls`; undefined
   * for a new device) join the batch's seenDuring, asked while that class still exists.
   */
  private noteSeen(id: string, cls: number | undefined): void {
    let seen = this.pending.seenDuring.get(id);
    if (!seen) {
      seen = new Set();
      this.pending.seenDuring.set(id, seen);
    }
    if (cls === undefined) return;
    for (const viewer of this.members.keys()) {
      if (this.policy.relation(viewer, cls) !== null) seen.add(viewer);
    }
  }

  private moveClass(id: string, from: number | undefined, to: number | undefined): void {
    if (from !== undefined) {
      const set = this.members.get(from);
      set?.delete(id);
      if (set?.size === 0) this.members.delete(from);
    }
    if (to === undefined) return;
    const set = this.members.get(to);
    if (set) set.add(id);
    else this.members.set(to, new Set([id]));
  }

  /** A new reflector list (a relay's reflector came or went) reaches every device's self. */
  setReflectors(reflectors: readonly ReflectorInfo[]): void {
    if (JSON.stringify(reflectors) === JSON.stringify(this.reflectors)) return;
    this.reflectors = [...reflectors];
    for (const id of this.entries.keys()) this.pending.selfChanged.add(id);
  }

  /** A new relay list reaches every device as a change of its self. */
  setRelays(relays: readonly NetmapRelay[]): void {
    const next = relays.slice(0, MAX_NETMAP_RELAYS);
    if (JSON.stringify(next) === JSON.stringify(this.relays)) return;
    this.relays = next;
    for (const id of this.entries.keys()) this.pending.selfChanged.add(id);
  }

  private bump(serial: number | undefined): void {
    if (serial !== undefined && serial > this.serial) this.serial = serial;
  }

  self(id: string): NetmapSelf | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    return selfOf(e.state, this.dnsName(e.state.name), this.accountName, this.reflectors, this.relays);
  }

  /** The full `netmap` frame for one device, or undefined if the device is not in the account. */
  snapshotFrame(id: string, serial: number, resume?: string): string | undefined {
    const self = this.self(id);
    const viewer = this.entries.get(id);
    if (!self || !viewer) return undefined;
    const peers: Json<NetmapPeer>[] = [];
    const access: PeerAccess[] = [];
    for (const [cls, ids] of this.members) {
      const rel = this.policy.relation(viewer.cls, cls);
      if (rel === null) continue;
      const seen: string[] = [];
      for (const peerId of ids) {
        if (peerId === id) continue;
        peers.push(this.entries.get(peerId)!.fragment);
        seen.push(peerId);
      }
      if (seen.length > 0) access.push(accessEntry(seen, rel));
    }
    return jsonFrame<NetmapMessage>({
      type: 'netmap',
      serial,
      resume,
      self,
      peers: Json.array(peers),
      access,
    });
  }

  hasPendingChanges(): boolean {
    const p = this.pending;
    return p.upserts.size > 0 || p.removes.size > 0 || p.selfChanged.size > 0 || p.resnapshot.size > 0;
  }

  /** Hands out the changes since the last call and starts a new batch. */
  takeChanges(): ChangeBatch {
    const batch = this.pending;
    this.pending = emptyBatch();
    return batch;
  }

  /** The frame of a batch for one device, or undefined when nothing in it concerns the device. */
  batchFrame(batch: ChangeBatch, viewerId: string, serial: number, resume?: string): BatchFrame | undefined {
    const viewer = this.entries.get(viewerId);
    if (!viewer) return undefined;
    if (batch.resnapshot.has(viewerId)) {
      const frame = this.snapshotFrame(viewerId, serial, resume);
      return frame === undefined ? undefined : { type: 'netmap', frame };
    }
    let body: DeltaBody | null;
    if (!batch.upserts.has(viewerId) && !batch.removes.has(viewerId) && !batch.selfChanged.has(viewerId)) {
      // Most viewers are not part of the batch: those of one class share one body.
      body = batch.sharedBodies.get(viewer.cls) ?? null;
      if (!batch.sharedBodies.has(viewer.cls)) {
        body = deltaBody(this.bodyContext, batch, { cls: viewer.cls });
        batch.sharedBodies.set(viewer.cls, body);
      }
    } else {
      body = deltaBody(this.bodyContext, batch, this.viewerOf(batch, viewerId, viewer.cls));
    }
    if (body === null) return undefined;
    return { type: 'delta', frame: jsonFrame<DeltaMessage>({ type: 'delta', serial, resume, ...body }) };
  }

  /**
   * The `delta` that brings a device's netmap from `from` up to now (a reconnect), or why only a
   * snapshot can (undefined: the device is not in the account).
   */
  resumeFrame(
    viewerId: string,
    from: ResumeFrom,
    serial: number,
    resume?: string,
  ): { frame: string } | { refused: ResumeRefusal } | undefined {
    const viewer = this.entries.get(viewerId);
    if (!viewer) return undefined;
    // A base at or past the serial to send is not a netmap this hub handed out.
    if (serial <= from.base) return { refused: 'token' };
    const changed = this.journal.since(from.cursor);
    if (changed === null) return { refused: 'journal' };
    if (viewer.classSince > from.cursor) return { refused: 'reclassed' };
    if (changed.size > Math.max(16, this.entries.size / 4)) return { refused: 'changes' };
    const upserts = new Map<string, Json<NetmapPeer>>();
    const removes = new Set<string>();
    for (const id of changed) {
      const e = this.entries.get(id);
      if (id === viewerId) continue;
      // Gone, or hidden by the policy now: a removal of a peer it does not hold is a no-op there.
      if (e === undefined || this.policy.relation(viewer.cls, e.cls) === null) removes.add(id);
      else upserts.set(id, e.fragment);
    }
    const self = this.self(viewerId)!;
    const body = deltaBody(
      this.bodyContext,
      { ...emptyBatch(), upserts, removes },
      { id: viewerId, cls: viewer.cls },
      () => true,
    );
    const frame = jsonFrame<DeltaMessage>({
      type: 'delta',
      serial,
      base: from.base,
      resume,
      upsert: body?.upsert ?? [],
      remove: body?.remove ?? [],
      // Always: reflectors and relays are not in the journal, and the device may have changed itself.
      self,
      ...(body?.access ? { access: body.access } : {}),
    });
    return { frame };
  }

  /** What deltaBody needs of the account. */
  private readonly bodyContext: BodyContext = {
    classOf: (peerId) => this.entries.get(peerId)!.cls,
    relation: (viewerCls, peerCls) => this.policy.relation(viewerCls, peerCls),
  };

  /** A viewer in the batch; one whose own entry changed gets its self along. */
  private viewerOf(batch: ChangeBatch, id: string, cls: number): BodyViewer {
    return batch.selfChanged.has(id) ? { id, cls, self: this.self(id)! } : { id, cls };
  }
}
