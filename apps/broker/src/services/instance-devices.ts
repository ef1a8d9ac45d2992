import { asc, inArray, sql } from 'drizzle-orm';
import { accounts, type DeviceRow, devices } from '../db/schema';
import type { DeviceState } from '../domain/netmap-builder';
import { toDeviceState } from './device-state';
import type { Tx } from './tx';

/** A device taken offline and the account serial of that change (a device-upsert to publish). */
export interface DeviceChange {
  accountId: string;
  serial: number;
  device: DeviceState;
}

/**
 * Within `tx`, takes offline every device held by a control connection of instance `instanceId`
 * (connection ids are `<instanceId>:<uuid>`). Each device gets its own serial, as markOffline
 * would give it, so deltas stay one serial per change. A device that has since reconnected to
 * another instance carries that instance's prefix and is left alone.
 */
export async function offlineInstanceDevices(tx: Tx, instanceId: string): Promise<DeviceChange[]> {
  const rows = await tx
    .update(devices)
    .set({ connectionId: null, lastSeen: sql`now()` })
    .where(sql`starts_with(${devices.connectionId}, ${`${instanceId}:`})`)
    .returning();
  if (rows.length === 0) return [];
  const byAccount = new Map<string, DeviceRow[]>();
  for (const row of rows) {
    const list = byAccount.get(row.accountId) ?? [];
    list.push(row);
    byAccount.set(row.accountId, list);
  }
  // Accounts in id order: two takeovers running at once lock them in the same order (no deadlock).
  const locked = await tx
    .select({ id: accounts.id })
    .from(accounts)
    .where(inArray(accounts.id, [...byAccount.keys()]))
    .orderBy(asc(accounts.id))
    .for('update');
  const changes: DeviceChange[] = [];
  for (const { id } of locked) {
    const list = byAccount.get(id)!;
    const [bumped] = await tx
      .update(accounts)
      .set({ netmapSerial: sql`${accounts.netmapSerial} + ${list.length}` })
      .where(sql`${accounts.id} = ${id}`)
      .returning({ serial: accounts.netmapSerial });
    const first = (bumped?.serial ?? 0) - list.length + 1;
    list.forEach((row, i) => {
      changes.push({ accountId: id, serial: first + i, device: toDeviceState(row) });
    });
  }
  return changes;
}
