import { type CandidateKind, type DeviceInfo, type MappingType, OVERLAY_PREFIX } from '@trellis/proto';
import { eq, like, type SQL } from 'drizzle-orm';
import type { Logger } from 'pino';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { type DeviceRow, devices } from '../db/schema';
import type { AddressAllocator } from '../domain/address-allocator';
import { replaceLearned } from '../domain/device-candidates';
import type { DeviceState } from '../domain/netmap-builder';
import type { BrokerEvent, EventBus } from '../events/event-bus';
import type { TagActor } from '../policy/tag-rules';
import { DeviceRoutesReader } from '../routes/route-store';
import { approveDevice, type DeviceEdit, deviceNamed, renameDevice, retagDevice } from './device-edits';
import type { Enrolled, EnrollInput } from './device-enrollment';
import { type KeyChanged, type RotationHolder, rekeyDevice, rotateDeviceKey } from './device-keys';
import { DevicePresence, type KeyedDevice } from './device-presence';
import { DeviceReads } from './device-reads';
import { removeDevice } from './device-removal';
import { toDeviceState } from './device-state';
import { type DeviceChange, offlineInstanceDevices } from './instance-devices';
import { OverlayAddresses } from './overlay-addresses';
import { SetupKeyEnrollments } from './setup-key-enrollments';
import { bumpSerial, type Tx, withUniqueRetry } from './tx';
import { VirtualDevicesService } from './virtual-devices';

export type { EnrollInput } from './device-enrollment';
export type { LoadedAccount } from './device-reads';

export interface EnrollResult {
  deviceId: string;
  accountId: string;
  accountName: string;
  name: string;
  dnsName: string;
  address: string;
  overlayPrefix: typeof OVERLAY_PREFIX;
  /** True when the public key was already enrolled in the account and the device record was kept. */
  reenrolled: boolean;
  /** False: it waits for an admin's approval before it may connect. */
  approved: boolean;
}

export interface DevicesConfig {
  zone: string;
  /** Seconds a removed device's address stays out of allocation. */
  addressGraceSeconds: number;
  allocator: AddressAllocator;
  logger?: Logger;
}

/**
 * Devices: enrollment (device-enrollment; addresses in overlay-addresses), removal, online state and
 * endpoints. Every change bumps the account's netmap serial in the same transaction and is then
 * published on the bus.
 */
export class DevicesService extends DeviceReads {
  private readonly addresses: OverlayAddresses;
  private readonly presence: DevicePresence;
  private readonly routes: DeviceRoutesReader;
  private readonly enrollments: SetupKeyEnrollments;

  constructor(
    db: Db,
    private readonly bus: EventBus,
    private readonly config: DevicesConfig,
  ) {
    super(db, config.zone);
    this.addresses = new OverlayAddresses(db, config.allocator, config.addressGraceSeconds);
    this.presence = new DevicePresence(db);
    this.routes = new DeviceRoutesReader(db);
    this.enrollments = new SetupKeyEnrollments(db, this.addresses);
  }

  /**
   * Tells every instance about a change that is committed already. A publish that still fails (the
   * database went away) must not turn the committed change into an error for its caller: the
   * instances find the account behind the database within seconds and reload it (ControlHub).
   * `withRoutes` false: the device has no routes to read (one created by the change).
   */
  private async announce(event: BrokerEvent, withRoutes = true): Promise<void> {
    try {
      await this.bus.publish(withRoutes ? await this.routes.complete(event) : event);
    } catch (err) {
      this.config.logger?.warn(
        { kind: event.kind, err: err instanceof Error ? err.message : String(err) },
        'change committed but not published: instances repair it from the database',
      );
    }
  }

  /**
   * Enrolls with a setup key; `by` is the enrolling device (with its address) in the audit log.
   * Enrollments into one account that arrive together commit together (EnrollmentBatcher).
   */
  async enroll(input: EnrollInput, by: Actor = SYSTEM_ACTOR): Promise<EnrollResult> {
    return this.announced(await this.enrollments.submit(input, by));
  }

  /**
   * Runs `work`, which enrolls one device (enrollGranted) and may write more in the same
   * transaction, then tells every instance about the device.
   */
  async enrollIn(work: (tx: Tx, addresses: OverlayAddresses) => Promise<Enrolled>): Promise<EnrollResult> {
    // Deadlocks too: many enrollments now reach the account row's lock at once (their last statement).
    return this.announced(
      await withConflictRetry(() =>
        withUniqueRetry(5, () => this.db.transaction((tx) => work(tx, this.addresses))),
      ),
    );
  }

  /** Tells every instance about an enrolled device (committed) and answers its enrollment. */
  private async announced({
    row,
    accountId,
    accountName,
    reenrolled,
    serial,
  }: Enrolled): Promise<EnrollResult> {
    // A new device has no routes yet (routes added later come with a later serial): no read for them,
    // one round trip per enrollment that cost more broker CPU than the enrollment's share of its batch.
    const device = toDeviceState(row);
    await this.announce({ kind: 'device-upsert', accountId, serial, device }, reenrolled);
    return {
      deviceId: row.id,
      accountId,
      accountName,
      name: row.name,
      dnsName: this.dnsName(row.name, accountName),
      address: row.address,
      overlayPrefix: OVERLAY_PREFIX,
      reenrolled,
      approved: row.approved,
    };
  }

  /**
   * Replaces a device's tags (see retagDevice); the change reaches the devices like any other
   * (their views may change).
   */
  setTags(
    accountId: string,
    accountName: string,
    idOrName: string,
    tags: readonly string[],
    actor: TagActor,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<DeviceInfo> {
    return this.edit(accountId, accountName, (tx) =>
      retagDevice(tx, accountId, accountName, idOrName, tags, actor, by),
    );
  }

  /** Gives a device another name (see renameDevice); its DNS name follows on every instance. */
  rename(
    accountId: string,
    accountName: string,
    idOrName: string,
    name: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<DeviceInfo> {
    return this.edit(accountId, accountName, (tx) =>
      renameDevice(tx, accountId, accountName, idOrName, name, by),
    );
  }

  /** An admin lets a device that waits for approval into the mesh (see approveDevice). */
  approve(
    accountId: string,
    accountName: string,
    idOrName: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<DeviceInfo> {
    return this.edit(accountId, accountName, (tx) => approveDevice(tx, accountId, accountName, idOrName, by));
  }

  private async edit(accountId: string, accountName: string, fn: (tx: Tx) => Promise<DeviceEdit>) {
    const { row, serial } = await this.db.transaction(fn);
    if (serial !== null) {
      await this.announce({ kind: 'device-upsert', accountId, serial, device: toDeviceState(row) });
    }
    return this.toInfo(row, accountName);
  }

  /**
   * The device's own key rotation (`rotate-key` on its control connection `holder`), verified
   * against its stored key, id and address. Throws a DomainError when refused; nothing changes then.
   */
  async rotateKey(
    deviceId: string,
    newKey: string,
    signature: string,
    holder: RotationHolder,
    by: Actor = { kind: 'device', deviceId, address: null },
  ): Promise<DeviceState> {
    const change = await this.db.transaction((tx) =>
      rotateDeviceKey(tx, deviceId, newKey, signature, holder, by),
    );
    return this.announceKeyChange(change);
  }

  /**
   * An admin's re-key of a device that lost its key. Its control connection (the old key) is closed
   * by the hubs on the upsert; the device then enrolls again with the new key, keeping its record.
   */
  async rekey(
    accountId: string,
    accountName: string,
    idOrName: string,
    publicKey: string,
    by: Actor = SYSTEM_ACTOR,
  ) {
    const label = `"${idOrName}" in account ${accountName}`;
    const where = deviceNamed(accountId, idOrName);
    const change = await this.db.transaction((tx) => rekeyDevice(tx, where, label, publicKey, by));
    await this.announceKeyChange(change);
    return this.toInfo(change.row, accountName);
  }

  private async announceKeyChange({ row, serial }: KeyChanged): Promise<DeviceState> {
    const device = toDeviceState(row);
    await this.announce({ kind: 'device-upsert', accountId: row.accountId, serial, device });
    return device;
  }

  /**
   * Removes by id or by name (a gateway with its virtual devices, see removeDevice); the addresses
   * are held back for the grace period. Each removed device is published with its own serial.
   */
  async remove(
    accountId: string,
    accountName: string,
    idOrName: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<DeviceInfo> {
    const { row, gone } = await withConflictRetry(() =>
      this.db.transaction((tx) => removeDevice(tx, accountId, accountName, idOrName, this.addresses, by)),
    );
    for (const { id, serial } of gone) {
      await this.announce({ kind: 'device-remove', accountId, serial, deviceId: id });
    }
    return this.toInfo(row, accountName);
  }

  /** Registers virtual devices (see VirtualDevicesService), which share this service's address pool. */
  virtualDevices(): VirtualDevicesService {
    return new VirtualDevicesService(this.db, this, this.addresses);
  }

  /** The device a control connection claims to be, with its account name; undefined if unknown. */
  forAuth(deviceId: string): Promise<{ device: KeyedDevice; accountName: string } | undefined> {
    return this.presence.forAuth(deviceId);
  }

  /**
   * Returns the change serial, or undefined if the device no longer exists (or, with `publicKey`,
   * no longer has that key: a rotation or re-key committed while the connection authenticated).
   */
  async markOnline(deviceId: string, connectionId: string, publicKey?: string): Promise<number | undefined> {
    const change = await this.presence.online(deviceId, connectionId, publicKey);
    if (!change) return undefined;
    const { row, serial } = change;
    // Both queued at once, in this order: they go out in one batch rather than two round trips.
    await Promise.all([
      this.announce({ kind: 'device-connected', accountId: row.accountId, deviceId, connectionId }),
      this.announce({ kind: 'device-upsert', accountId: row.accountId, serial, device: toDeviceState(row) }),
    ]);
    return serial;
  }

  /** Only the connection that holds the device online can take it offline (a replaced one cannot). */
  async markOffline(deviceId: string, connectionId: string): Promise<void> {
    const change = await this.presence.offline(deviceId, connectionId);
    if (change) {
      await this.announce({
        kind: 'device-upsert',
        accountId: change.row.accountId,
        serial: change.serial,
        device: toDeviceState(change.row),
      });
    }
  }

  async setEndpoints(deviceId: string, endpoints: string[]): Promise<void> {
    await this.updateAndPublish(eq(devices.id, deviceId), (current) =>
      JSON.stringify(current.endpoints) === JSON.stringify(endpoints)
        ? undefined
        : { endpoints, lastSeen: new Date() },
    );
  }

  /**
   * Locks the device row, applies the patch `change` computes from it (undefined: nothing changed),
   * bumps the account's serial and tells every instance, so peers get one delta.
   */
  private async updateAndPublish(
    where: SQL,
    change: (current: DeviceRow) => Partial<typeof devices.$inferInsert> | undefined,
  ): Promise<void> {
    const updated = await this.db.transaction(async (tx) => {
      const [current] = await tx.select().from(devices).where(where).for('update');
      const patch = current && change(current);
      if (!current || !patch) return undefined;
      const [row] = await tx.update(devices).set(patch).where(eq(devices.id, current.id)).returning();
      return { row: row!, serial: await bumpSerial(tx, current.accountId) };
    });
    if (updated) {
      await this.announce({
        kind: 'device-upsert',
        accountId: updated.row.accountId,
        serial: updated.serial,
        device: toDeviceState(updated.row),
      });
    }
  }

  /** Whether a WireGuard public key belongs to an enrolled device (the reflector's filter). */
  async isEnrolledKey(publicKey: string): Promise<boolean> {
    const [row] = await this.db
      .select({ id: devices.id })
      .from(devices)
      .where(eq(devices.publicKey, publicKey));
    return row !== undefined;
  }

  /**
   * Replaces the device's learned addresses of one kind (reflexive from the reflectors, portmapped
   * from the agent) and, when given, its NAT mapping type. Publishes only when something changed.
   */
  async setLearned(
    by: { deviceId: string } | { publicKey: string },
    kind: CandidateKind,
    endpoints: readonly string[] | undefined,
    mappingType?: MappingType,
  ): Promise<void> {
    const where = 'deviceId' in by ? eq(devices.id, by.deviceId) : eq(devices.publicKey, by.publicKey);
    await this.updateAndPublish(where, (current) => {
      const learned =
        endpoints === undefined
          ? current.netCandidates
          : replaceLearned(current.netCandidates, kind, endpoints);
      const mapping = mappingType ?? current.mappingType;
      const same =
        JSON.stringify(learned) === JSON.stringify(current.netCandidates) && mapping === current.mappingType;
      return same ? undefined : { netCandidates: learned, mappingType: mapping };
    });
  }

  /**
   * Takes offline every device a control connection of `instanceId` holds, in one transaction, and
   * publishes them: this instance's own stragglers at shutdown or after losing its lease.
   */
  async disconnectInstance(instanceId: string): Promise<number> {
    const changes = await withConflictRetry(() =>
      this.db.transaction((tx) => offlineInstanceDevices(tx, instanceId)),
    );
    await this.publishUpserts(changes);
    return changes.length;
  }

  /** Publishes device changes committed elsewhere (an instance takeover's transaction). */
  async publishUpserts(changes: readonly DeviceChange[]): Promise<void> {
    for (const c of changes) {
      await this.announce({
        kind: 'device-upsert',
        accountId: c.accountId,
        serial: c.serial,
        device: c.device,
      });
    }
  }

  /** Connections this process held are gone after a restart: nothing it owned is online any more. */
  async clearConnections(connectionPrefix: string): Promise<void> {
    // Rows lock in scan order, perhaps against a policy apply's gateways in id order: retried.
    await withConflictRetry(() =>
      this.db
        .update(devices)
        .set({ connectionId: null })
        .where(like(devices.connectionId, `${connectionPrefix}%`)),
    );
  }

  /** Addresses of removed devices still within the grace period (for tests and listings). */
  async heldAddresses(accountId: string): Promise<string[]> {
    return this.addresses.held(accountId);
  }
}
