import { randomInt } from 'node:crypto';
import { and, eq, like, or } from 'drizzle-orm';
import { type DeviceRow, devices } from '../db/schema';
import type { AddressScope } from '../domain/address-allocator';
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

/** `base`, or `base-2`, `base-3`…: the first label no device of the account has, after `skip` free ones. */
async function pickName(tx: Tx, accountId: string, base: string, skip: number): Promise<string> {
  const rows = await tx
    .select({ name: devices.name })
    .from(devices)
    .where(
      and(eq(devices.accountId, accountId), or(eq(devices.name, base), like(devices.name, `${base}-%`))),
    );
  const taken = new Set(rows.map((r) => r.name));
  let skipped = 0;
  return uniqueLabel(base, (l) => taken.has(l) || skipped++ < skip);
}
