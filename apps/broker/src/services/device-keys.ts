import { verifyKeyRotation } from '@trellis/crypto';
import type { KeyChange } from '@trellis/proto';
import { and, eq, type SQL } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { isUniqueViolation } from '../db/database';
import { type DeviceRow, devices } from '../db/schema';
import { badRequest, conflict, DomainError, notFound } from '../domain/errors';
import { bumpSerial, type Tx } from './tx';

/** A key change that committed: the device row and the serial to publish it with. */
export interface KeyChanged {
  row: DeviceRow;
  serial: number;
}

/** What a rotating control connection authenticated as. */
export interface RotationHolder {
  publicKey: string;
  connectionId: string;
}

/**
 * Within `tx`: the device's own key rotation, signed by its current key. It applies only while
 * `holder` still holds the device with the key it authenticated with: a connection that was
 * replaced (or whose key changed meanwhile) cannot rotate. Together with markOnline's key check
 * this means an agent that reconnected with its old key after sending a rotation knows the
 * rotation can no longer commit (apps/agent DeviceKeys relies on it).
 */
export async function rotateDeviceKey(
  tx: Tx,
  deviceId: string,
  newKey: string,
  signature: string,
  holder: RotationHolder,
  by: Actor,
): Promise<KeyChanged> {
  const current = await lockKeyed(tx, eq(devices.id, deviceId), 'device removed');
  if (current.publicKey !== holder.publicKey || current.connectionId !== holder.connectionId)
    throw conflict('this connection no longer holds the device under its key');
  if (newKey === current.publicKey) throw badRequest('the new key is the current key');
  const rotation = { deviceId, address: current.address, previousKey: current.publicKey, newKey };
  if (!verifyKeyRotation(rotation, signature))
    throw new DomainError(400, 'bad_signature', "the rotation is not signed by the device's key");
  return replaceKey(tx, current, newKey, { kind: 'rotated', previousKey: current.publicKey, signature }, by);
}

/** Within `tx`: an admin gives the device matched by `where` a new key (it lost its own). */
export async function rekeyDevice(
  tx: Tx,
  where: SQL,
  label: string,
  newKey: string,
  by: Actor,
): Promise<KeyChanged> {
  const current = await lockKeyed(tx, where, `no device ${label}`);
  if (newKey === current.publicKey) throw badRequest(`device ${current.name} has this key already`);
  const at = new Date().toISOString();
  return replaceKey(tx, current, newKey, { kind: 'rekeyed', previousKey: current.publicKey, at }, by);
}

/** A device that has a key, locked; a virtual device has none to change (its gateway's is its own). */
type KeyedRow = DeviceRow & { publicKey: string };

async function lockKeyed(tx: Tx, where: SQL, missing: string): Promise<KeyedRow> {
  const [row] = await tx.select().from(devices).where(where).for('update');
  if (!row) throw notFound(missing);
  if (row.publicKey === null) {
    throw conflict(`device ${row.name} is a virtual device: it has no key (its gateway's key carries it)`);
  }
  return { ...row, publicKey: row.publicKey };
}

/**
 * One key, one device: WireGuard routes by key, and keys are unique across accounts. The change is
 * recorded in the audit log `by` whoever made it, as a rotation or a re-key.
 */
async function replaceKey(tx: Tx, current: KeyedRow, newKey: string, keyChange: KeyChange, by: Actor) {
  const [other] = await tx.select({ id: devices.id }).from(devices).where(eq(devices.publicKey, newKey));
  if (other) throw conflict('this key belongs to another device');
  let row: DeviceRow | undefined;
  try {
    [row] = await tx
      .update(devices)
      .set({ publicKey: newKey, keyChange })
      .where(and(eq(devices.id, current.id), eq(devices.publicKey, current.publicKey)))
      .returning();
  } catch (err) {
    // Another device enrolled with this key after the check above.
    if (isUniqueViolation(err)) throw conflict('this key belongs to another device');
    throw err;
  }
  if (!row) throw conflict('the device changed meanwhile');
  await recordAudit(tx, by, {
    action: keyChange.kind === 'rotated' ? 'device.key-rotated' : 'device.rekeyed',
    accountId: current.accountId,
    target: { kind: 'device', id: current.id, name: current.name },
    details: { previousKey: current.publicKey, newKey },
  });
  return { row, serial: await bumpSerial(tx, current.accountId) };
}
