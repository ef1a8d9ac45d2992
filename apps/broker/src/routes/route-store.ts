import type { DeviceState } from '@trellis/proto';
import { eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { type DeviceRouteRow, deviceRoutes } from '../db/schema';
import type { BrokerEvent } from '../events/event-bus';
import type { Tx } from '../services/tx';
import { type RouteRec, stateRoutes } from './route-plan';

function recOf(row: DeviceRouteRow): RouteRec {
  return {
    prefix: row.prefix,
    advertised: row.advertised,
    approved: row.approved,
    autoApproved: row.autoApproved,
    down: row.down,
    advertisedAt: row.advertisedAt,
  };
}

/** A device's route rows (lock its device row first when about to replace them). */
export async function readRoutes(tx: Tx | Db, deviceId: string): Promise<RouteRec[]> {
  const rows = await tx.select().from(deviceRoutes).where(eq(deviceRoutes.deviceId, deviceId));
  return rows.map(recOf);
}

/** Replaces a device's route rows with `next`. */
export async function writeRoutes(
  tx: Tx,
  device: { id: string; accountId: string },
  next: readonly RouteRec[],
): Promise<void> {
  await tx.delete(deviceRoutes).where(eq(deviceRoutes.deviceId, device.id));
  if (next.length === 0) return;
  await tx
    .insert(deviceRoutes)
    .values(next.map((r) => ({ ...r, deviceId: device.id, accountId: device.accountId })));
}

/** DeviceState.routes of each of these devices that has any (one query). */
export async function stateRoutesOf(
  tx: Tx | Db,
  deviceIds: readonly string[],
): Promise<Map<string, NonNullable<DeviceState['routes']>>> {
  const out = new Map<string, NonNullable<DeviceState['routes']>>();
  if (deviceIds.length === 0) return out;
  const rows = await tx
    .select()
    .from(deviceRoutes)
    .where(inArray(deviceRoutes.deviceId, [...deviceIds]));
  const byDevice = new Map<string, RouteRec[]>();
  for (const row of rows) {
    const list = byDevice.get(row.deviceId) ?? [];
    list.push(recOf(row));
    byDevice.set(row.deviceId, list);
  }
  for (const [id, recs] of byDevice) {
    const routes = stateRoutes(recs);
    if (routes) out.set(id, routes);
  }
  return out;
}

/**
 * DeviceState.routes of one device, by a prepared statement: every device-upsert (presence
 * included) carries the routes, so this runs once per connect and disconnect.
 */
export class DeviceRoutesReader {
  private readonly query;

  constructor(db: Db) {
    this.query = db
      .select()
      .from(deviceRoutes)
      .where(eq(deviceRoutes.deviceId, sql.placeholder('deviceId')))
      .prepare('trellis_device_routes');
  }

  async of(deviceId: string): Promise<DeviceState['routes']> {
    const rows = await this.query.execute({ deviceId });
    return stateRoutes(rows.map(recOf));
  }

  /**
   * A device-upsert built from the device row alone, with the routes added. Read after its commit,
   * they are at least as new as its serial (a newer change has a higher serial and wins anyway).
   */
  async complete(event: BrokerEvent): Promise<BrokerEvent> {
    if (event.kind !== 'device-upsert' || event.device.routes !== undefined) return event;
    const routes = await this.of(event.device.id);
    return routes ? { ...event, device: { ...event.device, routes } } : event;
  }
}
