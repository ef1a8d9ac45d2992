import { and, eq, isNotNull, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { accounts, type DeviceRow, devices } from '../db/schema';

/** A device that authenticates with its own key (not a virtual device). */
export type KeyedDevice = DeviceRow & { publicKey: string };

export type ConnectionChange = { row: DeviceRow; serial: number } | undefined;

/**
 * The statements every control connection runs (its hello, online, offline), each built once and
 * prepared: built per call, drizzle's query building was a seventh of a broker's CPU while a
 * thousand devices failed over to it (bench failover).
 *
 * Online and offline set the connection that holds a device (null: offline) and bump its account's
 * serial in one statement. The account row is locked only while that statement runs: in a
 * transaction it stayed locked across the bump's and the commit's round trips, and a thousand
 * devices reconnecting to one account at once queued behind each other for seconds.
 */
export class DevicePresence {
  private readonly forAuthQuery;
  private readonly onlineWithKey;
  private readonly onlineAnyKey;
  private readonly offlineHeld;

  constructor(db: Db) {
    const deviceId = sql.placeholder('deviceId');
    this.forAuthQuery = db
      .select({ device: devices, accountName: accounts.name })
      .from(devices)
      .innerJoin(accounts, eq(devices.accountId, accounts.id))
      // A virtual device has no key to authenticate with: to a hello it is an unknown device.
      .where(and(eq(devices.id, deviceId), isNotNull(devices.publicKey)))
      .prepare('trellis_device_for_auth');
    this.onlineWithKey = connectionStatement(
      db,
      and(eq(devices.id, deviceId), eq(devices.publicKey, sql.placeholder('publicKey')))!,
      'trellis_device_online_with_key',
    );
    this.onlineAnyKey = connectionStatement(
      db,
      and(eq(devices.id, deviceId), isNotNull(devices.publicKey))!,
      'trellis_device_online',
    );
    this.offlineHeld = connectionStatement(
      db,
      and(eq(devices.id, deviceId), eq(devices.connectionId, sql.placeholder('heldBy')))!,
      'trellis_device_offline',
    );
  }

  /** The device a control connection claims to be, with its account name; undefined if unknown. */
  async forAuth(deviceId: string): Promise<{ device: KeyedDevice; accountName: string } | undefined> {
    const [row] = await this.forAuthQuery.execute({ deviceId });
    if (!row || row.device.publicKey === null) return undefined;
    return { device: { ...row.device, publicKey: row.device.publicKey }, accountName: row.accountName };
  }

  /** Held by `connectionId` from now; with `publicKey`, only while the device still has that key. */
  async online(deviceId: string, connectionId: string, publicKey?: string): Promise<ConnectionChange> {
    const [result] =
      publicKey === undefined
        ? await this.onlineAnyKey.execute({ deviceId, connectionId })
        : await this.onlineWithKey.execute({ deviceId, connectionId, publicKey });
    return result;
  }

  /** Offline, only if `heldBy` still holds it (a replaced connection cannot take it offline). */
  async offline(deviceId: string, heldBy: string): Promise<ConnectionChange> {
    const [result] = await this.offlineHeld.execute({ deviceId, heldBy, connectionId: null });
    return result;
  }
}

function connectionStatement(db: Db, where: SQL, name: string) {
  const changed = db.$with('changed').as(
    db
      .update(devices)
      .set({ connectionId: sql`${sql.placeholder('connectionId')}`, lastSeen: sql`now()` })
      .where(where)
      .returning(),
  );
  return db
    .with(changed)
    .update(accounts)
    .set({ netmapSerial: sql`${accounts.netmapSerial} + 1` })
    .from(changed)
    .where(eq(accounts.id, changed.accountId))
    .returning({ serial: accounts.netmapSerial, row: changed._.selectedFields })
    .prepare(name);
}
