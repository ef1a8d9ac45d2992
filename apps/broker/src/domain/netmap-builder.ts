import {
  type DeltaMessage,
  type DeviceState,
  isVirtual,
  type NetmapMessage,
  type NetmapRelay,
  type NetmapSelf,
  type ReflectorInfo,
} from '@trellis/proto';
import type { PairDevice } from '../pair-paths/pair-types';
import { Json, jsonFrame } from './json-frame';
import {
  type BatchFrame,
  type ChangeBatch,
  type DeltaBody,
  deltaBody,
  emptyBatch,
  type Fragment,
  noteUpsert,
  type PendingKind,
  pendingKind,
  policyBodies,
  resumeBatch,
  type SnapshotContext,
  sharedKey,
  snapshotParts,
} from './netmap-batch';
import { compressedSnapshot } from './netmap-compressed';
import { fragmentOf, onlyPresenceChanged, punchViewOf } from './netmap-fragment';
import { HostingPolicy } from './netmap-hosting';
import { NetmapJournal, type ResumeFrom, type ResumeRefusal } from './netmap-journal';
import { ClassMembers } from './netmap-members';
import { AllowAllPolicy, type NetmapPolicy, type PeerRelation, viewChanges } from './netmap-policy';
import { HostedSelves, SharedSelfParts, sameSelfView } from './netmap-self';

/** DeviceState: what the netmap knows of a device (proto shape, as it travels between instances). */
export type { BatchFrame, ChangeBatch, DeltaBody, DeviceState, ResumeFrom, ResumeRefusal };

interface Entry {
  state: DeviceState;
  /** The peer (or virtual device) serialised once; every snapshot and delta reuses this text. */
  fragment: Fragment;
  /** Its class under the account's policy (NetmapPolicy). */
  cls: number;
  /** Serial at which it got its class (or came in): a netmap held from before cannot be resumed. */
  classSince: number;
}

/**
 * The netmap of one account, kept as pre-serialised peer fragments so that a snapshot is a string
 * join and a change costs one serialisation plus one short frame per connected device. What a device
 * sees of the others is the policy's (NetmapPolicy): by class, so a change is worked out once per
 * class of viewers. It never holds another account's devices. Virtual devices are devices to the
 * policy but travel in `virtual` lists; whoever sees one sees its gateway (HostingPolicy).
 */
export class AccountNetmap {
  private readonly entries = new Map<string, Entry>();
  /** The devices of each policy class. */
  private readonly members = new ClassMembers((id) => this.entries.get(id)!.fragment);
  private pending: ChangeBatch = emptyBatch();
  /** A class moved or a virtual device changed since the gateways' lists were last compared. */
  private hostingDirty = false;
  /** The account's policy wrapped with what the gateways serve (policyInForce is the account's). */
  private policy: HostingPolicy;
  /** Each gateway's NetmapSelf.virtualDevices, compared after each batch and policy. */
  private readonly hosted = new HostedSelves({
    gateways: () => this.policy.gateways(),
    hostedBy: (id) => this.policy.hostedBy(id),
    entry: (id) => this.entries.get(id),
    members: this.members.byClass,
    relation: (a, b) => this.policy.relation(a, b),
  });
  /** Highest change serial applied. */
  serial: number;
  /** The reflectors and relays every device's self lists. */
  private readonly shared: SharedSelfParts;
  /** Which devices changed when: what a reconnecting device missed. */
  readonly journal: NetmapJournal;

  constructor(
    readonly accountName: string,
    readonly zone: string,
    serial = 0,
    /** The endpoint reflectors (the broker's, and a relay's), put into every device's NetmapSelf. */
    reflectors: readonly ReflectorInfo[] = [],
    policy: NetmapPolicy = new AllowAllPolicy(),
  ) {
    this.policy = new HostingPolicy(policy);
    this.shared = new SharedSelfParts(reflectors);
    this.serial = serial;
    this.journal = new NetmapJournal(serial);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The policy the netmaps are filtered with now. */
  get policyInForce(): NetmapPolicy {
    return this.policy.base;
  }

  get(id: string): DeviceState | undefined {
    return this.entries.get(id)?.state;
  }

  *states(): IterableIterator<DeviceState> {
    for (const e of this.entries.values()) yield e.state;
  }

  /** What the punch coordinator needs of a device: its typed candidates and NAT mapping. */
  punchView(id: string): PairDevice | undefined {
    const state = this.entries.get(id)?.state;
    return state && punchViewOf(state);
  }

  dnsName(name: string): string {
    return `${name}.${this.accountName}.${this.zone}`;
  }

  /** Whether `viewer` may connect to `peer`: the policy relates them, and neither is a virtual device. */
  canSee(viewerId: string, peerId: string): boolean {
    if (viewerId === peerId) return false;
    const v = this.entries.get(viewerId);
    const p = this.entries.get(peerId);
    if (v === undefined || p === undefined || isVirtual(v.state) || isVirtual(p.state)) return false;
    return this.policy.relation(v.cls, p.cls) !== null;
  }

  /** What the policy opens between two devices (null: they do not see each other). */
  relation(viewerId: string, peerId: string): PeerRelation | null {
    const v = this.entries.get(viewerId);
    const p = this.entries.get(peerId);
    if (viewerId === peerId || !v || !p) return null;
    return this.policy.relation(v.cls, p.cls);
  }

  upsert(state: DeviceState, serial?: number): void {
    const fragment = fragmentOf(state, this.dnsName(state.name));
    const previous = this.entries.get(state.id);
    const viewer = !isVirtual(state); // a virtual device has no netmap of its own
    this.bump(serial);
    this.noteSeen(state.id, previous?.cls);
    const hosts = this.notedHosts(state.id, previous?.state, state);
    this.policy.upsert(state);
    const cls = this.policy.classOf(state.id) ?? 0;
    const selfChanged = viewer && previous !== undefined && !sameSelfView(previous.state, state);
    const reclassed = previous !== undefined && previous.cls !== cls;
    const classSince = previous && !reclassed ? previous.classSince : this.serial;
    this.entries.set(state.id, { state, fragment, cls, classSince });
    if (previous?.cls !== cls) this.members.move(state.id, previous?.cls, cls);
    else if (previous.fragment.json.text !== fragment.json.text) this.members.touched(state.id);
    for (const h of hosts) this.refreshClass(h);
    if (previous?.cls !== cls || !viewer || hosts.length > 0) this.hostingDirty = true;
    // What only the broker uses (the control connection) changes nothing a device sees.
    if (previous && previous.fragment.json.text === fragment.json.text && !selfChanged && !reclassed) return;
    this.journal.record(state.id, this.serial, this.entries.size);
    if (reclassed && viewer) this.pending.resnapshot.add(state.id);
    if (selfChanged) this.pending.selfChanged.add(state.id);
    const presence =
      !selfChanged && !reclassed && onlyPresenceChanged(previous, state, fragment, this.dnsName(state.name));
    noteUpsert(this.pending, state.id, fragment, presence);
  }

  remove(id: string, serial?: number): void {
    this.bump(serial);
    const previous = this.entries.get(id);
    if (!previous) return;
    this.noteSeen(id, previous.cls);
    const hosts = this.notedHosts(id, previous.state, undefined);
    this.entries.delete(id);
    this.hosted.forget(id);
    this.journal.record(id, this.serial, this.entries.size);
    this.policy.remove(id);
    this.members.move(id, previous.cls, undefined);
    this.pending.upserts.delete(id);
    this.pending.presenceOnly.delete(id);
    this.pending.selfChanged.delete(id);
    this.pending.resnapshot.delete(id);
    this.pending.removes.add(id);
    for (const h of hosts) this.refreshClass(h);
    this.hostingDirty = true;
  }

  /**
   * The entries whose class a change of `id` may move, noted as seen in their classes now: a virtual
   * device's gateways, and a gateway's virtual devices when it comes or goes (seen only while it is).
   */
  private notedHosts(id: string, before: DeviceState | undefined, after: DeviceState | undefined): string[] {
    const ids = new Set<string>();
    for (const s of [before, after]) if (s?.via !== undefined) ids.add(s.via);
    if (!before || !after) for (const v of this.policy.hostedBy(id)) ids.add(v);
    const hosts = [...ids].filter((h) => h !== id && this.entries.has(h));
    for (const h of hosts) this.noteSeen(h, this.entries.get(h)!.cls);
    return hosts;
  }

  /**
   * Re-classes an entry moved by another's change in the same batch: viewers that now (no longer)
   * see it get it (its removal), and a gateway its whole netmap.
   */
  private refreshClass(id: string): void {
    const e = this.entries.get(id)!;
    const cls = this.policy.classOf(id) ?? 0;
    if (cls === e.cls) return;
    this.members.move(id, e.cls, cls);
    e.cls = cls;
    e.classSince = this.serial;
    this.journal.record(id, this.serial, this.entries.size);
    if (!isVirtual(e.state)) this.pending.resnapshot.add(id);
    this.pending.removes.delete(id);
    this.pending.presenceOnly.delete(id);
    this.pending.upserts.set(id, e.fragment);
  }

  /**
   * A new policy (already fed every device). Returns, for each device whose view changed, the delta
   * that takes it there: peers it now sees (with their access), peers it no longer sees, and peers
   * whose access changed (access only), so a rule change costs what it changes, not whole netmaps.
   * Call with no changes pending (AccountHub flushes first), and send these before any later batch.
   */
  setPolicy(base: NetmapPolicy): Map<string, DeltaBody> {
    const policy = new HostingPolicy(base, this.states());
    const changes = viewChanges(this.entries.keys(), this.policy, policy);
    this.policy = policy;
    this.members.clear();
    for (const [id, e] of this.entries) {
      e.cls = policy.classOf(id) ?? 0;
      this.members.move(id, undefined, e.cls);
    }
    const bodies = policyBodies(changes, this.bodyContext.fragmentOf);
    // What a gateway's virtual devices are open to may change without its view changing.
    this.hostingDirty = false;
    for (const id of this.hosted.changed()) {
      const body = bodies.get(id) ?? { upsert: Json.array([]), remove: Json.of([]) };
      bodies.set(id, { ...body, self: this.self(id)! });
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
    for (const viewer of this.members.classes()) {
      if (this.policy.relation(viewer, cls) !== null) seen.add(viewer);
    }
  }

  /** A new reflector list (a relay's reflector came or went) reaches every device's self. */
  setReflectors(reflectors: readonly ReflectorInfo[]): void {
    if (this.shared.setReflectors(reflectors))
      for (const id of this.entries.keys()) this.pending.selfChanged.add(id);
  }

  /** A new relay list reaches every device as a change of its self. */
  setRelays(relays: readonly NetmapRelay[]): void {
    if (this.shared.setRelays(relays)) for (const id of this.entries.keys()) this.pending.selfChanged.add(id);
  }

  private bump(serial: number | undefined): void {
    if (serial !== undefined && serial > this.serial) this.serial = serial;
  }

  self(id: string): NetmapSelf | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    const self = this.shared.selfOf(e.state, this.dnsName(e.state.name), this.accountName);
    const hosted = this.hosted.of(id);
    if (hosted) self.virtualDevices = hosted;
    return self;
  }

  /** The full `netmap` frame for one device, or undefined if the device is not in the account. */
  snapshotFrame(id: string, serial: number, resume?: string): string | undefined {
    const self = this.self(id);
    const viewer = this.entries.get(id);
    if (!self || !viewer) return undefined;
    const { lists, access } = snapshotParts(this.bodyContext, id, viewer.cls);
    return jsonFrame<NetmapMessage>({
      type: 'netmap',
      serial,
      resume,
      self,
      peers: Json.array(lists.peers),
      access,
      ...(lists.virtual.length > 0 ? { virtual: Json.array(lists.virtual) } : {}),
    });
  }

  /** snapshotFrame as raw DEFLATE (capability 3), spliced from the account's compressed chunks. */
  compressedSnapshotFrame(id: string, serial: number, resume?: string): Buffer | undefined {
    const self = this.self(id);
    const viewer = this.entries.get(id);
    if (!self || !viewer) return undefined;
    const head = { type: 'netmap', serial, resume, self } as const;
    return compressedSnapshot(this.bodyContext, this.members.chunks, head, id, viewer.cls);
  }

  /** What waits for the next flush: nothing, only devices coming online or going offline, or more. */
  pendingKind(): PendingKind {
    return pendingKind(this.pending);
  }

  /** Hands out the changes since the last call and starts a new batch. */
  takeChanges(): ChangeBatch {
    const batch = this.pending;
    // Who may open what on a gateway's virtual devices moves only with classes and virtual devices.
    if (this.hostingDirty) {
      this.hostingDirty = false;
      for (const id of this.hosted.changed()) batch.selfChanged.add(id);
    }
    this.pending = emptyBatch();
    return batch;
  }

  /** The frame of a batch for one device, or undefined when nothing in it concerns the device. */
  batchFrame(
    batch: ChangeBatch,
    viewerId: string,
    serial: number,
    resume?: string,
    compact = false,
  ): BatchFrame | undefined {
    const viewer = this.entries.get(viewerId);
    if (!viewer) return undefined;
    if (batch.resnapshot.has(viewerId)) {
      const frame = this.snapshotFrame(viewerId, serial, resume);
      return frame === undefined ? undefined : { type: 'netmap', frame };
    }
    let body: DeltaBody | null;
    if (!batch.upserts.has(viewerId) && !batch.removes.has(viewerId) && !batch.selfChanged.has(viewerId)) {
      // Most viewers are not part of the batch: those of one class share one body.
      const key = sharedKey(viewer.cls, compact);
      body = batch.sharedBodies.get(key) ?? null;
      if (!batch.sharedBodies.has(key)) {
        body = deltaBody(this.bodyContext, batch, { cls: viewer.cls, compact });
        batch.sharedBodies.set(key, body);
      }
    } else {
      const self = batch.selfChanged.has(viewerId) ? this.self(viewerId) : undefined;
      body = deltaBody(this.bodyContext, batch, { id: viewerId, cls: viewer.cls, self, compact });
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
    const body = deltaBody(
      this.bodyContext,
      resumeBatch(this.bodyContext, viewer.cls, changed),
      // Always its self: reflectors and relays are not in the journal, and it may have changed itself.
      { id: viewerId, cls: viewer.cls, self: this.self(viewerId)! },
      () => true,
    );
    return { frame: jsonFrame<DeltaMessage>({ type: 'delta', serial, base: from.base, resume, ...body! }) };
  }

  /** What deltaBody needs of the account. */
  private readonly bodyContext: SnapshotContext & { has(id: string): boolean } = {
    classOf: (peerId) => this.entries.get(peerId)!.cls,
    online: (peerId) => this.entries.get(peerId)!.state.online,
    relation: (viewerCls, peerCls) => this.policy.relation(viewerCls, peerCls),
    fragmentOf: (peerId) => this.entries.get(peerId)!.fragment,
    has: (id) => this.entries.has(id),
    members: this.members.byClass,
  };
}
