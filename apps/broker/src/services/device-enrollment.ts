import { ipv4CidrWithin } from '@trellis/proto';
import { and, eq } from 'drizzle-orm';
import { type AccountRow, type DeviceRow, devices, users } from '../db/schema';
import type { AddressScope } from '../domain/address-allocator';
import { conflict, DomainError } from '../domain/errors';
import { toDnsLabel } from '../domain/names';
import { currentParsedPolicy } from '../policy/policy-store';
import { blockCidr } from '../policy/tag-rules';
import { insertNewDevice } from './device-insert';
import type { OverlayAddresses } from './overlay-addresses';
import { bumpSerial, RetryEnrollment, type Tx } from './tx';

/** What a device says about itself when it enrolls. */
export interface DeviceFields {
  publicKey: string;
  name?: string;
  hostname: string;
  os: string;
  endpoints: string[];
  /** The request carried a valid proof of the device's private key (enrollProof). */
  proven: boolean;
}

export interface EnrollInput extends DeviceFields {
  setupKey: string;
}

/** What lets a device into an account: a setup key, or a signed-in user's approval (device flow). */
export interface EnrollGrant {
  account: AccountRow;
  /** Tags a new device gets. */
  tags: string[];
  /** Name of the policy block its address comes from; null: anywhere outside the blocks. */
  cidr: string | null;
  /** The user a new untagged device belongs to; null: nobody's. */
  ownerId: string | null;
  /** That user's email when the caller read it already (else it is looked up). */
  ownerEmail?: string | null;
  /** False: a new device waits for an admin's approval (a device enrolled again keeps its own). */
  approved: boolean;
}

/** What an enrollment wrote: the device, its account, and the serial of that change. */
export interface Enrolled {
  row: DeviceRow;
  accountId: string;
  accountName: string;
  /** The public key was already enrolled in the account and the device record was kept. */
  reenrolled: boolean;
  serial: number;
}

/**
 * Within `tx`: enrolls the device in the grant's account. A new device gets a free name and
 * address; the same machine (same WireGuard key) again keeps its own.
 */
export async function enrollGranted(
  tx: Tx,
  input: DeviceFields,
  grant: EnrollGrant,
  addresses: OverlayAddresses,
): Promise<Enrolled> {
  const { row, reenrolled } = await placeDevice(tx, input, grant, addresses);
  const serial = await bumpSerial(tx, grant.account.id);
  return { row, accountId: grant.account.id, accountName: grant.account.name, reenrolled, serial };
}

/**
 * The device's row written (new, or the same key's again), without its serial. `known`: the device
 * with the key as the caller read it in this transaction (null: none), else it is looked up.
 */
async function placeDevice(
  tx: Tx,
  input: DeviceFields,
  grant: EnrollGrant,
  addresses: OverlayAddresses,
  known?: { id: string; accountId: string } | null,
): Promise<{ row: DeviceRow; reenrolled: boolean }> {
  const { account } = grant;
  const existing =
    known !== undefined
      ? known
      : (
          await tx
            .select({ id: devices.id, accountId: devices.accountId })
            .from(devices)
            .where(eq(devices.publicKey, input.publicKey))
        )[0];
  const refused = refusal(existing ?? null, account.id, input.proven);
  if (refused) throw refused;
  if (existing) return { row: await enrollAgain(tx, existing.id, input), reenrolled: true };
  let ownerEmail = grant.ownerEmail ?? null;
  if (grant.ownerEmail === undefined && grant.ownerId) {
    const [owner] = await tx.select({ email: users.email }).from(users).where(eq(users.id, grant.ownerId));
    ownerEmail = owner?.email ?? null;
  }
  const row = await insertNewDevice(
    tx,
    account.id,
    toDnsLabel(input.name ?? input.hostname, 60),
    {
      hostname: input.hostname,
      os: input.os,
      publicKey: input.publicKey,
      endpoints: input.endpoints,
      tags: grant.tags,
      userEmail: ownerEmail,
      approved: grant.approved,
    },
    addresses,
    await addressScope(tx, account.id, grant.cidr),
  );
  return { row, reenrolled: false };
}

/** Why a device whose public key has `existing` (if any) may not enroll in `accountId`, or null. */
export function refusal(
  existing: { accountId: string } | null,
  accountId: string,
  proven: boolean,
): DomainError | null {
  if (!existing) return null;
  if (existing.accountId !== accountId)
    return conflict('this public key is already enrolled in another account');
  if (proven) return null;
  // Public keys are no secret: without the proof this would let anyone rewrite the device's endpoints.
  return new DomainError(
    401,
    'proof_required',
    'this public key is enrolled already: enrolling it again needs proof of its private key',
  );
}

/** Same machine (same WireGuard key) enrolling again: its row keeps its id, name and address. */
export async function enrollAgain(tx: Tx, deviceId: string, input: DeviceFields): Promise<DeviceRow> {
  const [row] = (await tx
    .update(devices)
    .set({ hostname: input.hostname, os: input.os, endpoints: input.endpoints })
    .where(and(eq(devices.id, deviceId), eq(devices.publicKey, input.publicKey)))
    .returning()) as DeviceRow[];
  // Removed or re-keyed by an admin since it was read (no lock): enroll again from the start.
  if (!row) throw new RetryEnrollment();
  return row;
}

/**
 * Where a new device's address may come from: the grant's policy block, and outside every
 * other block (an address inside one would put the device in it, and let it see that block).
 */
export async function addressScope(tx: Tx, accountId: string, cidr: string | null): Promise<AddressScope> {
  const policy = await currentParsedPolicy(tx, accountId);
  const blocks = policy.blocks.map((b) => b.cidr);
  if (cidr === null) return { avoid: blocks };
  const within = blockCidr(policy, cidr);
  // Its own block and the blocks around it are fine; the blocks inside it are not.
  return { within, avoid: blocks.filter((b) => b !== within && ipv4CidrWithin(b, within)) };
}
