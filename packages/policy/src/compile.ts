import type { AccessRules, PeerAccess } from '@trellis/proto';
import { type DeviceView, openSet, signatureOf, usedAtoms, viewOf } from './match';
import { isEmpty, NOTHING, type PortSet, toAccessRules } from './ports';
import type { Atom } from './selectors';
import type { Policy, PolicyDevice } from './types';

/** Devices the policy cannot tell apart; the relation between two classes is computed once. */
interface DeviceClass {
  readonly id: number;
  readonly key: string;
  readonly view: DeviceView;
  readonly members: Set<string>;
}

/** What one class may open on another, in both forms. */
interface Relation {
  readonly set: PortSet;
  readonly rules: AccessRules;
  readonly json: string;
}

export interface Access {
  /** What the peer may open on the viewer. */
  in: AccessRules;
  /** What the viewer may open on the peer. */
  out: AccessRules;
}

const copyRules = (rules: AccessRules): AccessRules =>
  rules.map((r) => (r.ports ? { ...r, ports: r.ports.map(([a, b]) => [a, b]) } : { ...r }));

/**
 * A policy applied to an account's devices. Devices are grouped into classes by what the policy's
 * selectors say about them, so the work of a change scales with the classes, not with the devices.
 */
export class CompiledPolicy {
  private readonly used: ReadonlySet<Atom>;
  private readonly devices = new Map<string, { device: PolicyDevice; cls: DeviceClass }>();
  private readonly classes = new Map<number, DeviceClass>();
  private readonly byKey = new Map<string, DeviceClass>();
  /** from class -> to class -> what from may open on to. */
  private readonly relations = new Map<number, Map<number, Relation>>();
  private nextClass = 0;

  constructor(
    readonly policy: Policy,
    devices: Iterable<PolicyDevice> = [],
  ) {
    this.used = usedAtoms(policy);
    for (const d of devices) this.upsertDevice(d);
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
      const view = viewOf(this.policy, sig.block, sig.atoms);
      cls = { id: this.nextClass++, key: sig.key, view, members: new Set() };
      this.classes.set(cls.id, cls);
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
    this.byKey.delete(cls.key);
    this.relations.delete(cls.id);
    for (const row of this.relations.values()) row.delete(cls.id);
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

  private relation(from: DeviceClass, to: DeviceClass): Relation {
    let row = this.relations.get(from.id);
    if (!row) {
      row = new Map();
      this.relations.set(from.id, row);
    }
    let r = row.get(to.id);
    if (!r) {
      const set = openSet(this.policy, from.view, to.view);
      const rules = toAccessRules(set);
      r = { set, rules, json: JSON.stringify(rules) };
      row.set(to.id, r);
    }
    return r;
  }

  private sees(a: DeviceClass, b: DeviceClass): boolean {
    return !isEmpty(this.relation(a, b).set) || !isEmpty(this.relation(b, a).set);
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
    const out = this.relation(a.cls, b.cls);
    const inn = this.relation(b.cls, a.cls);
    if (isEmpty(out.set) && isEmpty(inn.set)) return null;
    return { in: copyRules(inn.rules), out: copyRules(out.rules) };
  }

  /** Every device the viewer sees; a walk over classes, then their members. */
  *visiblePeers(viewerId: string): Iterable<string> {
    const viewer = this.devices.get(viewerId);
    if (!viewer) return;
    for (const cls of this.classes.values()) {
      if (!this.sees(viewer.cls, cls)) continue;
      for (const id of cls.members) if (id !== viewerId) yield id;
    }
  }

  /** The viewer's peers grouped by identical access: the `access` field of its netmap. */
  peersByAccess(viewerId: string): PeerAccess[] {
    const viewer = this.devices.get(viewerId);
    if (!viewer) return [];
    const groups = new Map<string, PeerAccess>();
    for (const cls of this.classes.values()) {
      const out = this.relation(viewer.cls, cls);
      const inn = this.relation(cls, viewer.cls);
      if (isEmpty(out.set) && isEmpty(inn.set)) continue;
      const key = `${inn.json}|${out.json}`;
      let group = groups.get(key);
      for (const id of cls.members) {
        if (id === viewerId) continue;
        if (!group) {
          group = { peers: [], in: copyRules(inn.rules), out: copyRules(out.rules) };
          groups.set(key, group);
        }
        group.peers.push(id);
      }
    }
    return [...groups.values()];
  }
}
