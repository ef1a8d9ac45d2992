import { and, eq, gt, inArray, isNull, or, type SQL, sql } from 'drizzle-orm';
import { type AccountRow, accounts, devices, type SetupKeyRow, setupKeys, users } from '../db/schema';
import { DomainError, notFound } from '../domain/errors';
import { effectiveUsageLimit, setupKeyState } from '../domain/setup-key-rules';
import { hashSecret } from '../security/tokens';
import { RetryEnrollment, type Tx } from './tx';

export interface CheckedKey {
  key: SetupKeyRow;
  account: AccountRow;
  creatorEmail: string | null;
}

/** A device enrolled with a public key (in any account). */
export interface EnrolledKey {
  id: string;
  accountId: string;
}

/** What a batch's keys and public keys stand for, as read at its start. */
export interface CheckedBatch {
  /** Each setup key (by its secret) with its account, or why it enrolls nothing. */
  keys: Map<string, CheckedKey | DomainError>;
  /** The devices enrolled already with the batch's public keys, by key (empty when no key is known). */
  enrolled: Map<string, EnrolledKey>;
}

/**
 * The setup keys (by their secrets) with their account and creator (who owns the untagged devices
 * they enroll) and the devices enrolled with `publicKeys` already, read in one round trip without a
 * lock: the uses are counted by spendKeysAndTakeSerials at the end of the transaction. Locking the
 * key here held every enrollment with the same key (a fleet's) behind the whole transaction of the
 * one before.
 */
export async function checkSetupKeys(
  tx: Tx,
  secrets: readonly string[],
  publicKeys: readonly string[],
  now: Date,
): Promise<CheckedBatch> {
  const hashes = new Map(secrets.map((s) => [hashSecret(s), s]));
  const found = await tx
    .select({
      key: setupKeys,
      account: accounts,
      creatorEmail: users.email,
      enrolled: sql<unknown>`(select coalesce(json_agg(json_build_array(${devices.publicKey}, ${devices.id}, ${devices.accountId})), '[]'::json) from ${devices} where ${inArray(devices.publicKey, [...publicKeys])})`,
    })
    .from(setupKeys)
    .leftJoin(accounts, eq(accounts.id, setupKeys.accountId))
    .leftJoin(users, eq(users.id, setupKeys.createdBy))
    .where(inArray(setupKeys.keyHash, [...hashes.keys()]));
  const keys = new Map<string, CheckedKey | DomainError>();
  for (const secret of secrets)
    keys.set(secret, new DomainError(401, 'invalid_setup_key', 'unknown setup key'));
  for (const { key, account, creatorEmail } of found) {
    const secret = hashes.get(key.keyHash);
    if (secret === undefined) continue;
    const invalid = invalidKeyError(key, now);
    if (invalid) keys.set(secret, invalid);
    else if (!account) keys.set(secret, notFound('the setup key belongs to no account'));
    else keys.set(secret, { key, account, creatorEmail });
  }
  const raw = found[0]?.enrolled ?? [];
  // json arrives parsed from node-postgres and PGlite alike; as text from a driver that does not parse it.
  const rows = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<[string, string, string]>;
  return {
    keys,
    enrolled: new Map(rows.map(([publicKey, id, accountId]) => [publicKey, { id, accountId }])),
  };
}

/** Uses left on a key as read (Infinity: no limit). */
export function usesLeft(key: SetupKeyRow): number {
  const limit = effectiveUsageLimit(key.reusable, key.usageLimit);
  return limit === null ? Number.POSITIVE_INFINITY : Math.max(0, limit - key.usedCount);
}

/**
 * Counts `uses` (key id → how many) and takes that many consecutive netmap serials of the account,
 * in one statement that checks every key is still valid for its count (a revocation or other uses
 * committed meanwhile); returns the last serial. The rows stay locked only from here to the commit,
 * the end of the transaction, so no later serial commits before an earlier one. A key that changed
 * since it was read reruns the transaction (RetryEnrollment), which then reads it as it is now.
 */
export async function spendKeysAndTakeSerials(
  tx: Tx,
  uses: ReadonlyMap<string, number>,
  accountId: string,
  now: Date,
): Promise<number> {
  const ids = [...uses.keys()];
  const total = [...uses.values()].reduce((a, b) => a + b, 0);
  const count: SQL = sql`(case ${setupKeys.id} ${sql.join(
    ids.map((id) => sql`when ${id}::uuid then ${uses.get(id)}::int`),
    sql` `,
  )} end)`;
  // The limit as effectiveUsageLimit says: usage_limit, else 1 for a one-off key, else none.
  const limit = sql`coalesce(${setupKeys.usageLimit}, case when ${setupKeys.reusable} then null else 1 end)`;
  const spent = tx.$with('spent').as(
    tx
      .update(setupKeys)
      .set({ usedCount: sql`${setupKeys.usedCount} + ${count}` })
      .where(
        and(
          inArray(setupKeys.id, ids),
          isNull(setupKeys.revokedAt),
          or(isNull(setupKeys.expiresAt), gt(setupKeys.expiresAt, now)),
          or(sql`${limit} is null`, sql`${setupKeys.usedCount} + ${count} <= ${limit}`),
        ),
      )
      .returning({ id: setupKeys.id }),
  );
  const [bumped] = await tx
    .with(spent)
    .update(accounts)
    .set({ netmapSerial: sql`${accounts.netmapSerial} + ${total}` })
    .where(and(eq(accounts.id, accountId), sql`(select count(*) from ${spent}) = ${ids.length}`))
    .returning({ serial: accounts.netmapSerial });
  if (!bumped) throw new RetryEnrollment();
  return bumped.serial;
}

/** Why `key` enrolls nothing now, or null when it is valid. */
function invalidKeyError(key: SetupKeyRow, now: Date): DomainError | null {
  const state = setupKeyState(key, now);
  if (state === 'valid') return null;
  return exhaustedOr(state);
}

/** The refusal for a key in `state` (a key with uses left for some of a batch: 'exhausted' for the rest). */
export function exhaustedOr(state: 'revoked' | 'expired' | 'exhausted' = 'exhausted'): DomainError {
  const why = {
    revoked: 'has been revoked',
    expired: 'has expired',
    exhausted: 'has reached its usage limit',
  };
  return new DomainError(401, 'invalid_setup_key', `setup key ${why[state]}`);
}
