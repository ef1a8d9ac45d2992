import type {
  DeltaMessage,
  DeviceState,
  NetmapMessage,
  NetmapPeer,
  NetmapRelay,
  NetmapSelf,
  ReflectorInfo,
} from '@trellis/proto';
import { OVERLAY_PREFIX } from '@trellis/proto';
import type { PairDevice } from '../pair-paths/pair-types';
import { deviceCandidates } from './device-candidates';
import { Json, jsonFrame, type Spliced } from './json-frame';

/** What the netmap needs to know about one device (shape: proto, as it travels between instances). */
export type { DeviceState };

interface Entry {
  state: DeviceState;
  /** The peer serialised once; every snapshot and delta reuses this text. */
  fragment: Json<NetmapPeer>;
}

/** What a delta says besides its type and serial; built once per batch for the viewers outside it. */
type DeltaBody = Spliced<Omit<DeltaMessage, 'type' | 'serial'>>;

/** NetmapSelf.relays holds at most this many. */
const MAX_NETMAP_RELAYS = 32;

/** Changes collected since the last flush: last write wins per device. */
export interface ChangeBatch {
  upserts: Map<string, Json<NetmapPeer>>;
  removes: Set<string>;
  /** Devices whose view of themselves (reflexive addresses, NAT type) changed. */
  selfChanged: Set<string>;
  /** Delta body for viewers outside the batch (null: nothing to send), computed on first use. */
  sharedBody?: DeltaBody | null;
}

/**
 * The netmap of one account, kept as pre-serialised peer fragments so that a snapshot is a string
 * join and a change costs one serialisation plus one short frame per connected device. Today every
 * device of the account may see every other one; it never holds another account's devices.
 */
export class AccountNetmap {
  private readonly entries = new Map<string, Entry>();
  private pending: ChangeBatch = { upserts: new Map(), removes: new Set(), selfChanged: new Set() };
  /** Highest change serial applied. */
  serial: number;
  /** Relays the account's devices may be sent to (NetmapSelf.relays). */
  private relays: readonly NetmapRelay[] = [];

  constructor(
    readonly accountName: string,
    readonly zone: string,
    serial = 0,
    /** The endpoint reflectors (the broker's, and a relay's), put into every device's NetmapSelf. */
    private reflectors: readonly ReflectorInfo[] = [],
  ) {
    this.serial = serial;
  }

  get size(): number {
    return this.entries.size;
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

  /**
   * Policy hook: whether `viewer` may see `peer`. Today: any other device of the same account. A real
   * policy must also group viewers in deltaFrame, whose shared body assumes everyone sees everyone.
   */
  canSee(viewerId: string, peerId: string): boolean {
    return viewerId !== peerId;
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
    };
    const fragment = Json.of(peer);
    const previous = this.entries.get(state.id);
    this.bump(serial);
    const selfChanged = previous !== undefined && !sameSelfView(previous.state, state);
    this.entries.set(state.id, { state, fragment });
    // What only the broker uses (the control connection) changes nothing a device sees.
    if (previous && previous.fragment.text === fragment.text && !selfChanged) return;
    if (selfChanged) this.pending.selfChanged.add(state.id);
    this.pending.removes.delete(state.id);
    this.pending.upserts.set(state.id, fragment);
  }

  remove(id: string, serial?: number): void {
    this.bump(serial);
    if (!this.entries.delete(id)) return;
    this.pending.upserts.delete(id);
    this.pending.removes.add(id);
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
    const self: NetmapSelf = {
      id,
      name: e.state.name,
      dnsName: this.dnsName(e.state.name),
      address: e.state.address,
      accountName: this.accountName,
      overlayPrefix: OVERLAY_PREFIX,
    };
    if (this.reflectors.length > 0) self.reflectors = [...this.reflectors];
    if (this.relays.length > 0) self.relays = [...this.relays];
    const reflexive = (e.state.learned ?? []).filter((c) => c.kind === 'reflexive').map((c) => c.endpoint);
    if (reflexive.length > 0) self.reflexive = reflexive;
    if (e.state.mappingType) self.mappingType = e.state.mappingType;
    return self;
  }

  /** The full `netmap` frame for one device, or undefined if the device is not in the account. */
  snapshotFrame(id: string, serial: number): string | undefined {
    const self = this.self(id);
    if (!self) return undefined;
    const peers: Json<NetmapPeer>[] = [];
    for (const [peerId, e] of this.entries) if (this.canSee(id, peerId)) peers.push(e.fragment);
    return jsonFrame<NetmapMessage>({ type: 'netmap', serial, self, peers: Json.array(peers) });
  }

  hasPendingChanges(): boolean {
    return (
      this.pending.upserts.size > 0 || this.pending.removes.size > 0 || this.pending.selfChanged.size > 0
    );
  }

  /** Hands out the changes since the last call and starts a new batch. */
  takeChanges(): ChangeBatch {
    const batch = this.pending;
    this.pending = { upserts: new Map(), removes: new Set(), selfChanged: new Set() };
    return batch;
  }

  /** The `delta` frame of a batch for one device, or undefined when nothing in it concerns the device. */
  deltaFrame(batch: ChangeBatch, viewerId: string, serial: number): string | undefined {
    // Most viewers are not part of the batch: they share one body, built once per batch.
    if (!batch.upserts.has(viewerId) && !batch.removes.has(viewerId) && !batch.selfChanged.has(viewerId)) {
      batch.sharedBody ??= this.deltaBody(batch, undefined);
      const shared = batch.sharedBody;
      return shared === null ? undefined : jsonFrame<DeltaMessage>({ type: 'delta', serial, ...shared });
    }
    const body = this.deltaBody(batch, viewerId);
    return body === null ? undefined : jsonFrame<DeltaMessage>({ type: 'delta', serial, ...body });
  }

  private deltaBody(batch: ChangeBatch, viewerId: string | undefined): DeltaBody | null {
    const upserts: Json<NetmapPeer>[] = [];
    for (const [peerId, fragment] of batch.upserts) {
      if (viewerId === undefined || this.canSee(viewerId, peerId)) upserts.push(fragment);
    }
    const removes: string[] = [];
    for (const peerId of batch.removes) if (peerId !== viewerId) removes.push(peerId);
    // A viewer whose own entry changed gets its self (reflexive addresses, NAT type) along.
    const self = viewerId !== undefined && batch.selfChanged.has(viewerId) ? this.self(viewerId) : undefined;
    if (upserts.length === 0 && removes.length === 0 && !self) return null;
    return { upsert: Json.array(upserts), remove: Json.of(removes), ...(self ? { self } : {}) };
  }
}

/** Whether what a device sees of itself is unchanged (it is not part of the peer fragment). */
function sameSelfView(a: DeviceState, b: DeviceState): boolean {
  return (
    JSON.stringify(a.learned ?? []) === JSON.stringify(b.learned ?? []) &&
    (a.mappingType ?? null) === (b.mappingType ?? null)
  );
}
