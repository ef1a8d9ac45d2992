import type { AccountView, ZoneView } from '@trellis/dns';
import { type BrokerEvent, type DeviceState, inMesh } from '@trellis/proto';

/** One account as the database has it, for the zone. */
export interface ZoneAccount {
  id: string;
  name: string;
  serial: number;
  meshOnly: boolean;
  devices: readonly DeviceState[];
}

/** An IP of `ip:port` or `[ip]:port`. */
const hostOf = (endpoint: string) => endpoint.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1');

class AccountRecords implements AccountView {
  readonly devices = new Map<string, DeviceState>();
  private readonly byName = new Map<string, string>();
  /** The serial of the last event applied per device id (removed ones too): older events are stale. */
  private readonly applied = new Map<string, number>();
  private sources: Set<string> | null = null;

  /** The serial its devices were read at: events up to it are in them already. */
  private readonly serialAtLoad: number;

  constructor(
    readonly id: string,
    readonly label: string,
    public serial: number,
    public meshOnly: boolean,
  ) {
    this.serialAtLoad = serial;
  }

  address(label: string): string | undefined {
    return this.byName.get(label);
  }

  /** A source its devices were seen at: a control connection's address, a reflexive one. */
  mayAsk(source: string): boolean {
    if (!this.sources) {
      this.sources = new Set();
      for (const d of this.devices.values()) {
        for (const e of d.endpoints) this.sources.add(hostOf(e));
        for (const c of d.learned ?? []) this.sources.add(hostOf(c.endpoint));
      }
    }
    return this.sources.has(source);
  }

  /** An event's change, unless one at least as new was applied to the device already. */
  applyEvent(serial: number, id: string, device: DeviceState | null): void {
    if (serial <= (this.applied.get(id) ?? this.serialAtLoad)) return;
    this.applied.set(id, serial);
    if (device) this.upsert(device);
    else this.remove(id);
    if (serial > this.serial) this.serial = serial;
  }

  upsert(d: DeviceState): void {
    this.remove(d.id);
    this.devices.set(d.id, d);
    this.byName.set(d.name.toLowerCase(), d.address);
  }

  private remove(id: string): void {
    const old = this.devices.get(id);
    this.sources = null;
    if (!old) return;
    this.devices.delete(id);
    const name = old.name.toLowerCase();
    if (this.byName.get(name) === old.address) this.byName.delete(name);
  }
}

/**
 * Every account's device names and addresses, as every broker instance answers them: loaded from
 * the database, kept current by the event bus (a rename, a new device, a removal), and replaced
 * account by account when a reload finds an account changed (events this instance missed).
 */
export class ZoneRecords implements ZoneView {
  private readonly byLabel = new Map<string, AccountRecords>();
  private readonly byId = new Map<string, AccountRecords>();
  private apex = 1;
  /** Moves with every change (the responder's cache of encoded answers is only as old as it). */
  generation = 0;

  get apexSerial(): number {
    return this.apex;
  }

  set apexSerial(serial: number) {
    if (serial !== this.apex) this.generation++;
    this.apex = serial;
  }

  account(label: string): AccountView | undefined {
    return this.byLabel.get(label);
  }

  /** The serial and mesh-only switch of each account held (for a reload to compare with). */
  held(): Map<string, { serial: number; meshOnly: boolean }> {
    return new Map([...this.byId].map(([id, a]) => [id, { serial: a.serial, meshOnly: a.meshOnly }]));
  }

  /** An account as read from the database now (new, or replacing what was held). */
  setAccount(a: ZoneAccount): void {
    this.generation++;
    const old = this.byId.get(a.id);
    if (old) this.byLabel.delete(old.label);
    const records = new AccountRecords(a.id, a.name.toLowerCase(), a.serial, a.meshOnly);
    for (const d of a.devices) records.upsert(d);
    this.byId.set(a.id, records);
    this.byLabel.set(records.label, records);
  }

  /** The mesh-only switch, as soon as it is told (the reload would find it too, later). */
  private setMeshOnly(id: string, meshOnly: boolean): void {
    const account = this.byId.get(id);
    if (!account || account.meshOnly === meshOnly) return;
    this.generation++;
    account.meshOnly = meshOnly;
  }

  /** Accounts gone from the database. */
  dropAccount(id: string): void {
    const old = this.byId.get(id);
    if (!old) return;
    this.generation++;
    this.byId.delete(id);
    this.byLabel.delete(old.label);
  }

  /** A change from the bus; one for an account not held (yet) waits for the next reload. */
  apply(e: BrokerEvent): void {
    if (e.kind === 'account-dns') {
      this.setMeshOnly(e.accountId, e.meshOnly);
      return;
    }
    if (e.kind !== 'device-upsert' && e.kind !== 'device-remove') return;
    const account = this.byId.get(e.accountId);
    if (account) this.generation++;
    // A device waiting for approval has no name yet.
    if (e.kind === 'device-upsert' && inMesh(e.device)) account?.applyEvent(e.serial, e.device.id, e.device);
    else if (e.kind === 'device-upsert') account?.applyEvent(e.serial, e.device.id, null);
    else account?.applyEvent(e.serial, e.deviceId, null);
  }
}
