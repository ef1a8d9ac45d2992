import type { PeerAccess } from '@trellis/proto';
import { type Access, type ClassAccess, copyRules, routeFields, sameRecord } from './class-access';
import { type DeviceView, signatureOf, usedAtoms, viewOf } from './match';
import { NOTHING, type PortSet } from './ports';
import { type Relation, RelationTable } from './relations';
import { type RouteRelation, RouteTable } from './route-access';
import { RuleChange } from './rule-change';
import type { Atom } from './selectors';
import { SlotMatrix } from './slot-matrix';
import type { Policy, PolicyDevice } from './types';

/** Devices the policy cannot tell apart; the relation between two classes is computed once. */
interface DeviceClass {
  readonly id: number;
  /** Index of its row and column in the relation matrix; reused once the class is gone. */
  readonly slot: number;
  readonly key: string;
  readonly view: DeviceView;
  readonly members: Set<string>;
}

/** Classes a viewer class sees with the same access both ways. */
interface AccessGroup extends ClassAccess {
  readonly classes: DeviceClass[];
}

/**
 * The version a policy replaces, over the same devices: relations of pairs that no changed rule
 * touches are taken from it instead of computed. Kept only until computeRelations has run.
 */
interface Derivation {
  readonly base: CompiledPolicy;
  readonly change: RuleChange;
  /**
   * This class id -> a class of `base` that held one of its members with the same record, so its
   * view is that member's old view; null when none qualified.
   */
  readonly reps: Map<number, DeviceClass | null>;
  /** Relation id in `base` -> the same relation's id here. */
  readonly adopted: Map<number, number>;
}

/**
 * A policy applied to an account's devices. Devices are grouped into classes by what the policy's
 * selectors say about them, so the work of a change scales with the classes, not with the devices.
 */
export class CompiledPolicy {
  private readonly used: ReadonlySet<Atom>;
  private readonly devices = new Map<string, { device: PolicyDevice; cls: DeviceClass }>();
  private readonly classes = new Map<number, DeviceClass>();
  private readonly byKey = new Map<string, DeviceClass>();
  private readonly table: RelationTable;
  private readonly routeTable: RouteTable;
  /** What `from` may open on `to`: 1 + a relation id; 0 not yet computed. */
  private readonly cells = new SlotMatrix();
  /** What `from` may reach through `to`'s routes: 1 + a route relation id; 0 not yet computed. */
  private readonly routeCells = new SlotMatrix();
  private readonly freeSlots: number[] = [];
  /** Viewer class id -> what it sees, grouped; cleared whenever the set of classes changes. */
  private readonly groups = new Map<number, readonly AccessGroup[]>();
  private nextSlot = 0;
  private nextClass = 0;
  private derivation: Derivation | undefined;

  /**
   * `base`: the version this one replaces, holding the same devices; where only rules differ,
   * relations that no added or removed rule touches are taken from it (see RuleChange).
   */
  constructor(
    readonly policy: Policy,
    devices: Iterable<PolicyDevice> = [],
    base?: CompiledPolicy,
  ) {
    this.used = usedAtoms(policy);
    this.table = new RelationTable(policy);
    this.routeTable = new RouteTable(policy);
    for (const d of devices) this.upsertDevice(d);
    const change = base && RuleChange.between(base.policy, policy);
    if (base && change) {
      this.derivation = { base, change, reps: new Map(), adopted: new Map() };
    }
  }

  /**
   * Adds or updates a device. `classChanged`: it is new or moved to another class, so what it and
   * others see may have changed; false means only its record changed.
   */
  upsertDevice(device: PolicyDevice): { classChanged: boolean } {
    const sig = signatureOf(this.policy, this.used, device);
    const known = this.devices.get(device.id);
    if (known && known.cls.key === sig.key) {
      known.device = device;
      return { classChanged: false };
    }
    if (known) this.leave(device.id, known.cls);
    let cls = this.byKey.get(sig.key);
    if (!cls) {
      const view = viewOf(this.policy, sig.block, sig.atoms, sig.served);
      const slot = this.freeSlots.pop() ?? this.nextSlot++;
      cls = { id: this.nextClass++, slot, key: sig.key, view, members: new Set() };
      this.classes.set(cls.id, cls);
      this.groups.clear();
      this.byKey.set(sig.key, cls);
    }
    cls.members.add(device.id);
    this.devices.set(device.id, { device, cls });
    return { classChanged: true };
  }

  /** Forgets a device; false when it was not known. */
  removeDevice(id: string): boolean {
    const known = this.devices.get(id);
    if (!known) return false;
    this.leave(id, known.cls);
    this.devices.delete(id);
    return true;
  }

  private leave(id: string, cls: DeviceClass): void {
    cls.members.delete(id);
    if (cls.members.size > 0) return;
    this.classes.delete(cls.id);
    this.groups.clear();
    this.byKey.delete(cls.key);
    this.cells.clear(cls.slot);
    this.routeCells.clear(cls.slot);
    this.freeSlots.push(cls.slot);
  }

  /** The class id of a device (equal ids: the policy treats them alike). */
  classOf(id: string): number | undefined {
    return this.devices.get(id)?.cls.id;
  }

  /** How many classes the current devices fall into. */
  get classCount(): number {
    return this.classes.size;
  }

  device(id: string): PolicyDevice | undefined {
    return this.devices.get(id)?.device;
  }

  allDevices(): Iterable<PolicyDevice> {
    return [...this.devices.values()].map((d) => d.device);
  }

  /** The members of a class. */
  membersOf(classId: number): ReadonlySet<string> {
    return this.classes.get(classId)?.members ?? new Set();
  }

  /** How many distinct relations the classes' pairs have needed so far. */
  get relationCount(): number {
    return this.table.size;
  }

  private relation(from: DeviceClass, to: DeviceClass): Relation {
    let cell = this.cells.get(from.slot, to.slot);
    if (cell === 0) {
      cell = (this.inherited(from, to) ?? this.table.between(from.view, to.view)) + 1;
      this.cells.set(from.slot, to.slot, cell, this.nextSlot);
    }
    return this.table.byId(cell - 1);
  }

  /** Few classes serve routes and few rules name them: always computed, never inherited. */
  private routeRelation(from: DeviceClass, to: DeviceClass): RouteRelation {
    let cell = this.routeCells.get(from.slot, to.slot);
    if (cell === 0) {
      cell = this.routeTable.between(from.view, to.view) + 1;
      this.routeCells.set(from.slot, to.slot, cell, this.nextSlot);
    }
    return this.routeTable.byId(cell - 1);
  }

  /** Both ways, or null when neither may open anything on or through the other. */
  private pair(a: DeviceClass, b: DeviceClass): ClassAccess | null {
    const out = this.relation(a, b);
    const inn = this.relation(b, a);
    const routesOut = this.routeRelation(a, b);
    const routesIn = this.routeRelation(b, a);
    const nothing = this.table.nothing;
    const none = this.routeTable.none;
    if (out === nothing && inn === nothing && routesOut === none && routesIn === none) return null;
    return { in: inn, out, routesIn, routesOut };
  }

  /** The relation id taken over from the base version, when no changed rule touches the pair. */
  private inherited(from: DeviceClass, to: DeviceClass): number | undefined {
    const d = this.derivation;
    if (!d) return undefined;
    const a = this.baseClassOf(d, from);
    const b = a && this.baseClassOf(d, to);
    if (!a || !b || d.change.touches(a.view, b.view, from.view, to.view)) return undefined;
    const old = d.base.relation(a, b);
    let id = d.adopted.get(old.id);
    if (id === undefined) {
      id = this.table.adopt(old);
      d.adopted.set(old.id, id);
    }
    return id;
  }

  /**
   * A class of the base that held a member of `cls` with the same record as here. It must still
   * be there: the slot of a class that went away is another class's.
   */
  private baseClassOf(d: Derivation, cls: DeviceClass): DeviceClass | null {
    const known = d.reps.get(cls.id);
    if (known === null || (known && d.base.classes.get(known.id) === known)) return known;
    let rep: DeviceClass | null = null;
    for (const id of cls.members) {
      const there = d.base.devices.get(id);
      if (there && sameRecord(there.device, this.devices.get(id)!.device)) {
        rep = there.cls;
        break;
      }
    }
    d.reps.set(cls.id, rep);
    return rep;
  }

  /**
   * Computes the relations between every two current classes, one viewer class per step, so a
   * caller can spread the work over turns of its event loop; afterwards every question about
   * these classes is a lookup.
   */
  *computeRelations(): Generator<void, void, void> {
    for (const a of [...this.classes.values()]) {
      if (!this.classes.has(a.id)) continue;
      for (const b of this.classes.values()) this.pair(a, b);
      yield;
    }
    // Every cell is filled: later ones (new classes) are computed from the rules.
    this.derivation = undefined;
  }

  /** The view of a device's class (undefined: unknown device). */
  viewOfDevice(id: string): DeviceView | undefined {
    return this.devices.get(id)?.cls.view;
  }

  /** What the policy sees of a class's members (undefined: no such class). */
  classView(classId: number): DeviceView | undefined {
    return this.classes.get(classId)?.view;
  }

  /**
   * What a device of class `viewer` and one of class `peer` may open on each other (null: they do
   * not see each other, or a class is unknown). Within one class this is two distinct members.
   */
  classAccess(viewer: number, peer: number): ClassAccess | null {
    const a = this.classes.get(viewer);
    const b = this.classes.get(peer);
    return a && b ? this.pair(a, b) : null;
  }

  /** What `fromId` may open on `toId`, as a set (nothing for itself or unknown devices). */
  openSet(fromId: string, toId: string): PortSet {
    const a = this.devices.get(fromId);
    const b = this.devices.get(toId);
    if (!a || !b || fromId === toId) return NOTHING;
    return this.relation(a.cls, b.cls).set;
  }

  /** Access between two devices; null when neither may reach the other (they do not see each other). */
  access(viewerId: string, peerId: string): Access | null {
    const a = this.devices.get(viewerId);
    const b = this.devices.get(peerId);
    if (!a || !b || viewerId === peerId) return null;
    const p = this.pair(a.cls, b.cls);
    return p && { in: copyRules(p.in.rules), out: copyRules(p.out.rules), ...routeFields(p, true) };
  }

  /** Every device the viewer sees; a walk over classes, then their members. */
  *visiblePeers(viewerId: string): Iterable<string> {
    const viewer = this.devices.get(viewerId);
    if (!viewer) return;
    for (const cls of this.classes.values()) {
      if (!this.pair(viewer.cls, cls)) continue;
      for (const id of cls.members) if (id !== viewerId) yield id;
    }
  }

  /**
   * The viewer's peers grouped by identical access: the `access` field of its netmap. The rules
   * are shared with every other viewer's groups: read them, do not change them.
   */
  peersByAccess(viewerId: string): PeerAccess[] {
    const viewer = this.devices.get(viewerId);
    if (!viewer) return [];
    const out: PeerAccess[] = [];
    for (const group of this.groupsOf(viewer.cls)) {
      const peers: string[] = [];
      for (const cls of group.classes) for (const id of cls.members) if (id !== viewerId) peers.push(id);
      if (peers.length > 0)
        out.push({ peers, in: group.in.rules, out: group.out.rules, ...routeFields(group) });
    }
    return out;
  }

  /**
   * The classes a viewer class sees, grouped by identical access: the same for every member, so
   * made once per class and kept until a class comes or goes.
   */
  private groupsOf(viewer: DeviceClass): readonly AccessGroup[] {
    const known = this.groups.get(viewer.id);
    if (known) return known;
    const byRelations = new Map<string, AccessGroup>();
    const groups: AccessGroup[] = [];
    for (const cls of this.classes.values()) {
      const p = this.pair(viewer, cls);
      if (!p) continue;
      const key = `${p.in.id} ${p.out.id} ${p.routesIn.id} ${p.routesOut.id}`;
      let group = byRelations.get(key);
      if (!group) {
        group = { ...p, classes: [] };
        byRelations.set(key, group);
        groups.push(group);
      }
      group.classes.push(cls);
    }
    this.groups.set(viewer.id, groups);
    return groups;
  }
}
