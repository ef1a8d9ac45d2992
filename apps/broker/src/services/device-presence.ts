import { eq, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { accounts, type DeviceRow, devices } from '../db/schema';

/**
 * Sets the control connection that holds a device (null: offline) and bumps its account's serial,
 * in one statement. The account row is locked only while that statement runs: in a transaction it
 * stayed locked across the bump's and the commit's round trips, and a thousand devices reconnecting
 * to one account at once queued behind each other for seconds (bench failover).
 * Returns undefined when `where` matched no device.
 */
export async function setDeviceConnection(
  db: Db,
  where: SQL,
  connectionId: string | null,
): Promise<{ row: DeviceRow; serial: number } | undefined> {
  const changed = db
    .$with('changed')
    .as(db.update(devices).set({ connectionId, lastSeen: sql`now()` }).where(where).returning());
  const [result] = await db
    .with(changed)
    .update(accounts)
    .set({ netmapSerial: sql`${accounts.netmapSerial} + 1` })
    .from(changed)
    .where(eq(accounts.id, changed.accountId))
    .returning({ serial: accounts.netmapSerial, row: changed._.selectedFields });
  return result;
}
