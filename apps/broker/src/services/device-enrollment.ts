import { ipv4CidrWithin } from '@trellis/proto';
import { and, eq, like, or } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import {
  type AccountRow,
  accounts,
  type DeviceRow,
  devices,
  type SetupKeyRow,
  setupKeys,
  users,
} from '../db/schema';
import type { AddressScope } from '../domain/address-allocator';
import { conflict, DomainError, notFound } from '../domain/errors';
import { toDnsLabel, uniqueLabel } from '../domain/names';
import { setupKeyState } from '../domain/setup-key-rules';
import { currentParsedPolicy } from '../policy/policy-store';
import { blockCidr } from '../policy/tag-rules';
import { hashSecret } from '../security/tokens';
import type { OverlayAddresses } from './overlay-addresses';
import { bumpSerial, type Tx } from './tx';

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
 * Within `tx`: spends one use of the setup key and enrolls the device in the key's account,
 * recorded in the audit log as done `by` the device with the key's name (never the key).
 */
export async function enrollDevice(
  tx: Tx,
  input: EnrollInput,
  addresses: OverlayAddresses,
  by: Actor,
): Promise<Enrolled> {
  const { account, key } = await spendSetupKey(tx, input.setupKey);
  // A tagged device is the tags' (a server, a camera), nobody's in particular: as in the policy.
  const ownerId = key.tags.length === 0 ? key.createdBy : null;
  const enrolled = await enrollGranted(
    tx,
    input,
    // Only admins make setup keys: a key is an approval in advance.
    { account, tags: key.tags, cidr: key.cidr, ownerId, approved: true },
    addresses,
  );
  const { row, reenrolled } = enrolled;
  await recordAudit(tx, by, {
    action: 'device.enrolled',
    accountId: account.id,
    target: { kind: 'device', id: row.id, name: row.name },
    details: {
      via: 'setup-key',
      setupKey: { id: key.id, name: key.name, prefix: key.prefix },
      address: row.address,
      reenrolled,
    },
  });
  return enrolled;
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
  const { account } = grant;
  const [existing] = await tx.select().from(devices).where(eq(devices.publicKey, input.publicKey));
  let row: DeviceRow;
  if (existing && existing.accountId !== account.id) {
    throw conflict('this public key is already enrolled in another account');
  }
  if (existing && !input.proven) {
    // Public keys are no secret: without the proof this would let anyone rewrite the device's endpoints.
    throw new DomainError(
      401,
      'proof_required',
      'this public key is enrolled already: enrolling it again needs proof of its private key',
    );
  }
  if (existing) {
    // Same machine (same WireGuard key) enrolling again: keep its id, name and address.
    [row] = (await tx
      .update(devices)
      .set({ hostname: input.hostname, os: input.os, endpoints: input.endpoints })
      .where(eq(devices.id, existing.id))
      .returning()) as [DeviceRow];
  } else {
    const name = await pickName(tx, account.id, toDnsLabel(input.name ?? input.hostname, 60));
    const address = await addresses.pick(
      tx,
      account.id,
      { publicKey: input.publicKey },
      await addressScope(tx, account.id, grant.cidr),
    );
    const owner = grant.ownerId
      ? (await tx.select({ email: users.email }).from(users).where(eq(users.id, grant.ownerId)))[0]
      : undefined;
    [row] = (await tx
      .insert(devices)
      .values({
        accountId: account.id,
        name,
        hostname: input.hostname,
        os: input.os,
        publicKey: input.publicKey,
        address,
        endpoints: input.endpoints,
        tags: grant.tags,
        userEmail: owner?.email ?? null,
        approved: grant.approved,
      })
      .returning()) as [DeviceRow];
  }
  const serial = await bumpSerial(tx, account.id);
  return { row, accountId: account.id, accountName: account.name, reenrolled: Boolean(existing), serial };
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

/** Counts one use of a valid setup key (locked until commit) and returns it and its account. */
async function spendSetupKey(tx: Tx, setupKey: string): Promise<{ account: AccountRow; key: SetupKeyRow }> {
  const [key] = await tx
    .select()
    .from(setupKeys)
    .where(eq(setupKeys.keyHash, hashSecret(setupKey)))
    .for('update');
  if (!key) throw new DomainError(401, 'invalid_setup_key', 'unknown setup key');
  const state = setupKeyState(key, new Date());
  if (state !== 'valid') {
    const why = {
      revoked: 'has been revoked',
      expired: 'has expired',
      exhausted: 'has reached its usage limit',
    };
    throw new DomainError(401, 'invalid_setup_key', `setup key ${why[state]}`);
  }
  const [account] = await tx.select().from(accounts).where(eq(accounts.id, key.accountId));
  if (!account) throw notFound('the setup key belongs to no account');
  await tx
    .update(setupKeys)
    .set({ usedCount: key.usedCount + 1 })
    .where(eq(setupKeys.id, key.id));
  return { account, key };
}

/** `base`, or `base-2`, `base-3`… whichever no device of the account has yet. */
async function pickName(tx: Tx, accountId: string, base: string): Promise<string> {
  const rows = await tx
    .select({ name: devices.name })
    .from(devices)
    .where(
      and(eq(devices.accountId, accountId), or(eq(devices.name, base), like(devices.name, `${base}-%`))),
    );
  const taken = new Set(rows.map((r) => r.name));
  return uniqueLabel(base, (l) => taken.has(l));
}
