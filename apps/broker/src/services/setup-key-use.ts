import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import { type AccountRow, accounts, devices, type SetupKeyRow, setupKeys, users } from '../db/schema';
import { DomainError, notFound } from '../domain/errors';
import { setupKeyState } from '../domain/setup-key-rules';
import { hashSecret } from '../security/tokens';
import type { Tx } from './tx';

/**
 * A valid setup key and its account, read without a lock: the use is counted by spendKeyAndTakeSerial at
 * the end of the transaction. Locking the key here held every enrollment with the same key (a
 * fleet's) behind the whole transaction of the one before: 115 enrollments/s at most.
 */
export async function checkSetupKey(tx: Tx, setupKey: string, publicKey: string): Promise<CheckedKey> {
  // One round trip (each costs the broker more CPU than building it) for the key, its account, its
  // creator (who owns the untagged devices it enrolls) and the device already enrolled with `publicKey`.
  const [found] = await tx
    .select({
      key: setupKeys,
      account: accounts,
      creatorEmail: users.email,
      existing: { id: devices.id, accountId: devices.accountId },
    })
    .from(setupKeys)
    .leftJoin(accounts, eq(accounts.id, setupKeys.accountId))
    .leftJoin(users, eq(users.id, setupKeys.createdBy))
    .leftJoin(devices, eq(devices.publicKey, publicKey))
    .where(eq(setupKeys.keyHash, hashSecret(setupKey)));
  if (!found) throw new DomainError(401, 'invalid_setup_key', 'unknown setup key');
  throwUnlessValid(found.key, new Date());
  if (!found.account) throw notFound('the setup key belongs to no account');
  return {
    key: found.key,
    account: found.account,
    creatorEmail: found.creatorEmail,
    existing: found.existing,
  };
}

export interface CheckedKey {
  key: SetupKeyRow;
  account: AccountRow;
  creatorEmail: string | null;
  /** The device enrolled with the public key already (in any account), if any. */
  existing: { id: string; accountId: string } | null;
}

/**
 * Counts one use of the key and takes the account's next netmap serial, in one statement that
 * checks the key is still valid (a revocation or the last allowed use committed meanwhile). Both
 * rows stay locked only from here to the commit: the end of an enrollment's transaction, where the
 * serial must be taken (see enrollDevice).
 */
export async function spendKeyAndTakeSerial(tx: Tx, key: SetupKeyRow, accountId: string): Promise<number> {
  const now = new Date();
  // The limit as effectiveUsageLimit says: usage_limit, else 1 for a one-off key, else none.
  const limit = sql`coalesce(${setupKeys.usageLimit}, case when ${setupKeys.reusable} then null else 1 end)`;
  const spent = tx.$with('spent').as(
    tx
      .update(setupKeys)
      .set({ usedCount: sql`${setupKeys.usedCount} + 1` })
      .where(
        and(
          eq(setupKeys.id, key.id),
          isNull(setupKeys.revokedAt),
          or(isNull(setupKeys.expiresAt), gt(setupKeys.expiresAt, now)),
          or(sql`${limit} is null`, sql`${setupKeys.usedCount} < ${limit}`),
        ),
      )
      .returning({ id: setupKeys.id }),
  );
  const [bumped] = await tx
    .with(spent)
    .update(accounts)
    .set({ netmapSerial: sql`${accounts.netmapSerial} + 1` })
    .where(and(eq(accounts.id, accountId), sql`exists (select 1 from ${spent})`))
    .returning({ serial: accounts.netmapSerial });
  if (bumped) return bumped.serial;
  const [current] = await tx.select().from(setupKeys).where(eq(setupKeys.id, key.id));
  if (!current) throw new DomainError(401, 'invalid_setup_key', 'unknown setup key');
  throwUnlessValid(current, now);
  throw notFound('the setup key belongs to no account');
}

function throwUnlessValid(key: SetupKeyRow, now: Date): void {
  const state = setupKeyState(key, now);
  if (state === 'valid') return;
  const why = {
    revoked: 'has been revoked',
    expired: 'has expired',
    exhausted: 'has reached its usage limit',
  };
  throw new DomainError(401, 'invalid_setup_key', `setup key ${why[state]}`);
}
