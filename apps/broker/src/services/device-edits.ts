import { DnsLabel } from '@trellis/proto';
import { and, eq, ne, type SQL } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { type DeviceRow, devices } from '../db/schema';
import { badRequest, conflict, notFound } from '../domain/errors';
import { currentParsedPolicy } from '../policy/policy-store';
import { checkTags, type TagActor } from '../policy/tag-rules';
import { bumpSerial, type Tx } from './tx';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The device of the account given by its id or its name. */
export function deviceNamed(accountId: string, idOrName: string): SQL {
  const byId = UUID_RE.test(idOrName);
  return and(
    eq(devices.accountId, accountId),
    byId ? eq(devices.id, idOrName.toLowerCase()) : eq(devices.name, idOrName),
  )!;
}

/** An admin's edit of one device: the row after it, and the serial it took (null: nothing changed). */
export interface DeviceEdit {
  row: DeviceRow;
  serial: number | null;
}

/** A name a device may have (a DNS label), or a 400 saying what one is. */
export function checkDeviceName(name: string): void {
  if (!DnsLabel.safeParse(name).success) {
    throw badRequest(`device name "${name}" must be a DNS label: a-z, 0-9 and inner hyphens, 1-63 chars`);
  }
}

/** A 409 when another device of the account (not `self`) has the name. */
export async function checkNameFree(
  tx: Tx,
  accountId: string,
  accountName: string,
  name: string,
  self?: string,
): Promise<void> {
  const named = and(eq(devices.accountId, accountId), eq(devices.name, name));
  const [taken] = await tx
    .select({ id: devices.id })
    .from(devices)
    .where(self === undefined ? named : and(named, ne(devices.id, self)));
  if (taken) throw conflict(`a device named "${name}" is already in account ${accountName}`);
}

async function lockDevice(tx: Tx, accountId: string, accountName: string, idOrName: string) {
  const [row] = await tx.select().from(devices).where(deviceNamed(accountId, idOrName)).for('update');
  if (!row) throw notFound(`no device "${idOrName}" in account ${accountName}`);
  return row;
}

/**
 * Within `tx`: replaces a device's tags. Every tag added must be declared in the policy and owned
 * by `actor` (policy tagOwners).
 */
export async function retagDevice(
  tx: Tx,
  accountId: string,
  accountName: string,
  idOrName: string,
  tags: readonly string[],
  actor: TagActor,
  by: Actor,
): Promise<DeviceEdit> {
  const wanted = [...new Set(tags)].sort();
  const current = await lockDevice(tx, accountId, accountName, idOrName);
  checkTags(
    await currentParsedPolicy(tx, accountId),
    actor,
    wanted.filter((t) => !current.tags.includes(t)),
  );
  if (JSON.stringify(current.tags) === JSON.stringify(wanted)) return { row: current, serial: null };
  const [updated] = await tx
    .update(devices)
    .set({ tags: wanted })
    .where(eq(devices.id, current.id))
    .returning();
  await recordAudit(tx, by, {
    action: 'device.tagged',
    accountId,
    target: { kind: 'device', id: current.id, name: current.name },
    details: { from: current.tags, to: wanted },
  });
  return { row: updated!, serial: await bumpSerial(tx, accountId) };
}

/**
 * Within `tx`: gives a device another name (a DNS label, unique in the account). Its DNS name and
 * every peer's netmap follow; a policy that names devices may see it in another class.
 */
export async function renameDevice(
  tx: Tx,
  accountId: string,
  accountName: string,
  idOrName: string,
  name: string,
  by: Actor,
): Promise<DeviceEdit> {
  checkDeviceName(name);
  const current = await lockDevice(tx, accountId, accountName, idOrName);
  if (current.name === name) return { row: current, serial: null };
  await checkNameFree(tx, accountId, accountName, name, current.id);
  const [updated] = await tx.update(devices).set({ name }).where(eq(devices.id, current.id)).returning();
  await recordAudit(tx, by, {
    action: 'device.renamed',
    accountId,
    target: { kind: 'device', id: current.id, name },
    details: { from: current.name, to: name },
  });
  return { row: updated!, serial: await bumpSerial(tx, accountId) };
}

/**
 * Within `tx`: lets a device that waits for approval into the mesh (approving one that is in
 * already changes nothing). Its peers get it in their netmaps, and its next connection is accepted.
 */
export async function approveDevice(
  tx: Tx,
  accountId: string,
  accountName: string,
  idOrName: string,
  by: Actor,
): Promise<DeviceEdit> {
  const current = await lockDevice(tx, accountId, accountName, idOrName);
  if (current.viaDeviceId !== null) {
    throw conflict(`device ${current.name} is a virtual device: it is approved when an admin registers it`);
  }
  if (current.approved) return { row: current, serial: null };
  const [updated] = await tx
    .update(devices)
    .set({ approved: true })
    .where(eq(devices.id, current.id))
    .returning();
  await recordAudit(tx, by, {
    action: 'device.approved',
    accountId,
    target: { kind: 'device', id: current.id, name: current.name },
    details: { owner: current.userEmail },
  });
  return { row: updated!, serial: await bumpSerial(tx, accountId) };
}
