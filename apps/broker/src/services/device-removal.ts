import { asc, eq } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { type DeviceRow, devices } from '../db/schema';
import { notFound } from '../domain/errors';
import { deviceNamed } from './device-edits';
import type { OverlayAddresses } from './overlay-addresses';
import { bumpSerial, type Tx } from './tx';

/** What a removal committed: the device asked for, and every device gone with the serial of each, in order. */
export interface Removed {
  row: DeviceRow;
  gone: { id: string; serial: number }[];
}

type GatewayRef = { id: string; name: string };

/**
 * Within `tx`: removes the device named by id or name. A gateway's virtual devices go with it,
 * each first and with its own serial, so no netmap ever holds a virtual device without its gateway.
 * Every removed address is held back for the grace period. Locks: the device, its virtual devices
 * (id order), then the account (the serial bumps), as every device writer.
 */
export async function removeDevice(
  tx: Tx,
  accountId: string,
  accountName: string,
  idOrName: string,
  addresses: OverlayAddresses,
  by: Actor,
): Promise<Removed> {
  const [found] = await tx.select().from(devices).where(deviceNamed(accountId, idOrName)).for('update');
  if (!found) throw notFound(`no device "${idOrName}" in account ${accountName}`);
  const served = await tx
    .select()
    .from(devices)
    .where(eq(devices.viaDeviceId, found.id))
    .orderBy(asc(devices.id))
    .for('update');
  const gone: Removed['gone'] = [];
  for (const row of served) {
    gone.push(await removeRow(tx, row, addresses, by, { id: found.id, name: found.name }, true));
  }
  let gateway: GatewayRef | undefined;
  if (found.viaDeviceId !== null) {
    [gateway] = await tx
      .select({ id: devices.id, name: devices.name })
      .from(devices)
      .where(eq(devices.id, found.viaDeviceId));
  }
  gone.push(await removeRow(tx, found, addresses, by, gateway, false));
  return { row: found, gone };
}

async function removeRow(
  tx: Tx,
  row: DeviceRow,
  addresses: OverlayAddresses,
  by: Actor,
  gateway: GatewayRef | undefined,
  withGateway: boolean,
): Promise<{ id: string; serial: number }> {
  await tx.delete(devices).where(eq(devices.id, row.id));
  await addresses.release(tx, row.accountId, row);
  await recordAudit(tx, by, {
    action: 'device.removed',
    accountId: row.accountId,
    target: { kind: 'device', id: row.id, name: row.name },
    details: {
      address: row.address,
      ...(row.lanAddress !== null ? { lanAddress: row.lanAddress } : {}),
      ...(gateway ? { gateway } : {}),
      ...(withGateway ? { withGateway: true as const } : {}),
    },
  });
  return { id: row.id, serial: await bumpSerial(tx, row.accountId) };
}
