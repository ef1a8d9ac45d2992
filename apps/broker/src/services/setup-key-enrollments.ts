import { eq } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { setupKeys } from '../db/schema';
import { hashSecret } from '../security/tokens';
import type { Enrolled, EnrollInput } from './device-enrollment';
import { type EnrollRequest, enrollBatch } from './enrollment-batch';
import { EnrollmentBatcher } from './enrollment-batcher';
import type { OverlayAddresses } from './overlay-addresses';
import { withUniqueRetry } from './tx';

/** Setup keys whose account is remembered (a key never changes account); the oldest is forgotten first. */
const KNOWN_KEYS = 1024;

/**
 * Setup-key enrollments, group-committed per account: one queue per account (EnrollmentBatcher),
 * each batch one transaction (enrollBatch). A key's account is looked up once (a key never changes
 * account); an unknown key's requests queue by the key, and fail in their batch as it says.
 */
export class SetupKeyEnrollments {
  private readonly batcher: EnrollmentBatcher<EnrollRequest, Enrolled>;
  /** Setup key hash → its account's id (null: no such key), looked up or being looked up. */
  private readonly accountOfKey = new Map<string, Promise<string | null>>();

  constructor(
    private readonly db: Db,
    private readonly addresses: OverlayAddresses,
  ) {
    this.batcher = new EnrollmentBatcher((_queue, requests) =>
      // Deadlocks too: a batch reaches the account row's lock last, as other writers may.
      withConflictRetry(() =>
        withUniqueRetry(5, () => this.db.transaction((tx) => enrollBatch(tx, requests, this.addresses))),
      ),
    );
  }

  /** The enrollment, committed (not yet announced). */
  async submit(input: EnrollInput, by: Actor): Promise<Enrolled> {
    const hash = hashSecret(input.setupKey);
    return this.batcher.submit((await this.accountOf(hash)) ?? `key:${hash}`, { input, by });
  }

  private async accountOf(hash: string): Promise<string | null> {
    let known = this.accountOfKey.get(hash);
    if (!known) {
      if (this.accountOfKey.size >= KNOWN_KEYS)
        this.accountOfKey.delete(this.accountOfKey.keys().next().value!);
      known = this.db
        .select({ accountId: setupKeys.accountId })
        .from(setupKeys)
        .where(eq(setupKeys.keyHash, hash))
        .then((rows) => rows[0]?.accountId ?? null);
      this.accountOfKey.set(hash, known);
    }
    try {
      const accountId = await known;
      // Unknown keys are not remembered: guesses would push the fleet's keys out.
      if (accountId === null) this.accountOfKey.delete(hash);
      return accountId;
    } catch (err) {
      this.accountOfKey.delete(hash);
      throw err;
    }
  }
}
