import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { accounts } from '../db/schema';

export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Records one netmap change in the account and returns its serial. */
export async function bumpSerial(tx: Tx, accountId: string): Promise<number> {
  const [row] = await tx
    .update(accounts)
    .set({ netmapSerial: sql`${accounts.netmapSerial} + 1` })
    .where(eq(accounts.id, accountId))
    .returning({ serial: accounts.netmapSerial });
  return row?.serial ?? 0;
}

/**
 * Locks the account row as its serial bump will (NO KEY UPDATE), before reading its policy: a
 * policy apply then either commits first and is read, or waits for this transaction.
 */
export async function lockAccountRow(tx: Tx, accountId: string): Promise<void> {
  await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for('no key update');
}

/** Thrown inside a transaction that must run again from the start (its enrollment became another). */
export class RetryEnrollment extends Error {
  constructor() {
    super('a concurrent enrollment changed what this one found: run it again');
  }
}

/**
 * Runs a transaction again when a concurrent writer took the same unique name or address, or a
 * concurrent enrollment asked for it (RetryEnrollment).
 */
export async function withUniqueRetry<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !(isUniqueViolation(err) || err instanceof RetryEnrollment)) throw err;
    }
  }
}
