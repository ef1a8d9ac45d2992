import type { NetmapPeer, NetmapSelf } from '@trellis/proto';
import { OVERLAY_PREFIX } from '@trellis/proto';

/** What the netmap needs to know about one device. */
export interface DeviceState {
  id: string;
  name: string;
  publicKey: string;
  address: string;
  endpoints: string[];
  online: boolean;
}

interface Entry {
  state: DeviceState;
  /** The peer serialised once; every snapshot and delta reuses this string. */
  fragment: string;
}

/** Changes collected since the last flush: last write wins per device. */
export interface ChangeBatch {
  upserts: Map<string, string>;
  removes: Set<string>;
  /** Delta body for viewers outside the batch (null: nothing to send), computed on first use. */
  sharedBody?: string | null;
}

/**
 * The netmap of one account, kept as pre-serialised peer fragments so that a snapshot is a string
 * join and a change costs one serialisation plus one short frame per connected device. Today every
 * device of the account may see every other one; it never holds another account's devices.
 */
export class AccountNetmap {
  private readonly entries = new Map<string, Entry>();
  private pending: ChangeBatch = { upserts: new Map(), removes: new Set() };
  /** Highest change serial applied. */
  serial: number;

  constructor(
    readonly accountName: string,
    readonly zone: string,
    serial = 0,
  ) {
    this.serial = serial;
  }

  get size(): number {
    return this.entries.size;
  }

  get(id: string): DeviceState | undefined {
    return this.entries.get(id)?.state;
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
      online: state.online,
    };
    const fragment = JSON.stringify(peer);
    const previous = this.entries.get(state.id);
    this.bump(serial);
    if (previous && previous.fragment === fragment) return;
    this.entries.set(state.id, { state, fragment });
    this.pending.removes.delete(state.id);
    this.pending.upserts.set(state.id, fragment);
  }

  remove(id: string, serial?: number): void {
    this.bump(serial);
    if (!this.entries.delete(id)) return;
    this.pending.upserts.delete(id);
    this.pending.removes.add(id);
  }

  private bump(serial: number | undefined): void {
    if (serial !== undefined && serial > this.serial) this.serial = serial;
  }

  self(id: string): NetmapSelf | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    return {
      id,
      name: e.state.name,
      dnsName: this.dnsName(e.state.name),
      address: e.state.address,
      accountName: this.accountName,
      overlayPrefix: OVERLAY_PREFIX,
    };
  }

  /** The full `netmap` frame for one device, or undefined if the device is not in the account. */
  snapshotFrame(id: string, serial: number): string | undefined {
    const self = this.self(id);
    if (!self) return undefined;
    const fragments: string[] = [];
    for (const [peerId, e] of this.entries) if (this.canSee(id, peerId)) fragments.push(e.fragment);
    return `{"type":"netmap","serial":${serial},"self":${JSON.stringify(self)},"peers":[${fragments.join(',')}]}`;
  }

  hasPendingChanges(): boolean {
    return this.pending.upserts.size > 0 || this.pending.removes.size > 0;
  }

  /** Hands out the changes since the last call and starts a new batch. */
  takeChanges(): ChangeBatch {
    const batch = this.pending;
    this.pending = { upserts: new Map(), removes: new Set() };
    return batch;
  }

  /** The `delta` frame of a batch for one device, or undefined when nothing in it concerns the device. */
  deltaFrame(batch: ChangeBatch, viewerId: string, serial: number): string | undefined {
    // Most viewers are not part of the batch: they share one body, built once per batch.
    if (!batch.upserts.has(viewerId) && !batch.removes.has(viewerId)) {
      batch.sharedBody ??= this.deltaBody(batch, undefined);
      return batch.sharedBody === null
        ? undefined
        : `{"type":"delta","serial":${serial},${batch.sharedBody}}`;
    }
    const body = this.deltaBody(batch, viewerId);
    return body === null ? undefined : `{"type":"delta","serial":${serial},${body}}`;
  }

  private deltaBody(batch: ChangeBatch, viewerId: string | undefined): string | null {
    const upserts: string[] = [];
    for (const [peerId, fragment] of batch.upserts) {
      if (viewerId === undefined || this.canSee(viewerId, peerId)) upserts.push(fragment);
    }
    const removes: string[] = [];
    for (const peerId of batch.removes) if (peerId !== viewerId) removes.push(peerId);
    if (upserts.length === 0 && removes.length === 0) return null;
    return `"upsert":[${upserts.join(',')}],"remove":${JSON.stringify(removes)}`;
  }
}
