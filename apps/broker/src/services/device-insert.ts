import { randomInt } from 'node:crypto';
import { and, eq, inArray, like, or } from 'drizzle-orm';
import { type DeviceRow, devices } from '../db/schema';
import type { AddressScope } from '../domain/address-allocator';
import type { DomainError } from '../domain/errors';
import { uniqueLabel } from '../domain/names';
import type { OverlayAddresses } from './overlay-addresses';
import { RetryEnrollment, type Tx } from './tx';

/** The new device's row without what this file picks (name, address) and what the database sets. */
export type NewDevice = Omit<typeof devices.$inferInsert, 'name' | 'address' | 'accountId' | 'publicKey'> & {
  publicKey: string;
};

/** Name or address collisions with concurrent enrollments tried again in the transaction before giving up. */
const INSERT_ATTEMPTS = 32;

/**
 * Inserts a new device with a free name (from `base`) and address (OverlayAddresses.pick) without
 * any lock of the account: concurrent enrollments each insert what they found free, and the
 * unique indexes settle a collision. The loser's insert waits for the winner's commit, inserts
 * nothing (ON CONFLICT DO NOTHING keeps its transaction alive), and picks again whichever of the
 * two collided, seeing the winner's row now. A key enrolled meanwhile by another request reruns the
 * whole transaction (RetryEnrollment): it is a re-enrollment now.
 */
export async function insertNewDevice(
  tx: Tx,
  accountId: string,
  base: string,
  fields: NewDevice,
  addresses: OverlayAddresses,
  scope: AddressScope,
): Promise<DeviceRow> {
  let name = await pickName(tx, accountId, base, 0);
  let address = await addresses.pick(tx, accountId, { publicKey: fields.publicKey }, scope);
  for (let attempt = 1; attempt <= INSERT_ATTEMPTS; attempt++) {
    const [row] = await tx
      .insert(devices)
      .values({ ...fields, accountId, name, address })
      .onConflictDoNothing()
      .returning();
    if (row) return row;
    const clashes = await tx
      .select({ name: devices.name, address: devices.address, publicKey: devices.publicKey })
      .from(devices)
      .where(
        or(
          and(eq(devices.accountId, accountId), or(eq(devices.name, name), eq(devices.address, address))),
          eq(devices.publicKey, fields.publicKey),
        ),
      );
    if (clashes.some((c) => c.publicKey === fields.publicKey)) throw new RetryEnrollment();
    // Many enrolling under one name at once would otherwise all take the same next free label again.
    if (clashes.some((c) => c.name === name))
      name = await pickName(tx, accountId, base, randomInt(attempt + 1));
    if (clashes.some((c) => c.address === address)) {
      address = await addresses.pick(tx, accountId, { publicKey: fields.publicKey }, scope);
    }
  }
  throw new RetryEnrollment();
}

/** One device of a batch for insertNewDevices. */
export interface NewDeviceWant {
  base: string;
  fields: NewDevice;
  scope: AddressScope;
}

/**
 * Inserts a batch of new devices (insertNewDevice for each, in one pass): names picked together
 * (one round trip), addresses too (OverlayAddresses.pickMany), one multi-row insert. A row the
 * unique indexes turned away (a concurrent writer outside the batch took its name or address)
 * goes through insertNewDevice alone. A full address pool fails its device only (its error).
 */
export async function insertNewDevices(
  tx: Tx,
  accountId: string,
  wants: readonly NewDeviceWant[],
  addresses: OverlayAddresses,
): Promise<Array<DeviceRow | DomainError>> {
  if (wants.length === 0) return [];
  const taken = await takenNames(
    tx,
    accountId,
    wants.map((w) => w.base),
  );
  const names = wants.map((w) => {
    const name = uniqueLabel(w.base, (l) => taken.has(l));
    taken.add(name);
    return name;
  });
  const picked = await addresses.pickMany(
    tx,
    accountId,
    wants.map((w) => ({ publicKey: w.fields.publicKey, scope: w.scope })),
  );
  const values = wants.flatMap((w, i) => {
    const address = picked[i];
    return typeof address === 'string' ? [{ ...w.fields, accountId, name: names[i]!, address }] : [];
  });
  const inserted = values.length
    ? ((await tx.insert(devices).values(values).onConflictDoNothing().returning()) as DeviceRow[])
    : [];
  const byKey = new Map(inserted.map((r) => [r.publicKey, r]));
  const out: Array<DeviceRow | DomainError> = [];
  for (const [i, w] of wants.entries()) {
    const address = picked[i]!;
    if (typeof address !== 'string') out.push(address);
    else
      out.push(
        byKey.get(w.fields.publicKey) ??
          (await insertNewDevice(tx, accountId, w.base, w.fields, addresses, w.scope)),
      );
  }
  return out;
}

/** `base`, or `base-2`, `base-3`…: the first label no device of the account has, after `skip` free ones. */
async function pickName(tx: Tx, accountId: string, base: string, skip: number): Promise<string> {
  const taken = await takenNames(tx, accountId, [base]);
  let skipped = 0;
  return uniqueLabel(base, (l) => taken.has(l) || skipped++ < skip);
}

/** The account's device names that are one of `bases` or one with a suffix (`base-…`). */
async function takenNames(tx: Tx, accountId: string, bases: readonly string[]): Promise<Set<string>> {
  const unique = [...new Set(bases)];
  const rows = await tx
    .select({ name: devices.name })
    .from(devices)
    .where(
      and(
        eq(devices.accountId, accountId),
        or(inArray(devices.name, unique), ...unique.map((b) => like(devices.name, `${b}-%`))),
      ),
    );
  return new Set(rows.map((r) => r.name));
}
