import type { AccountSettings, AccountSettingsChange } from '@trellis/proto';
import { eq } from 'drizzle-orm';
import type { Actor } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { type AccountRow, accounts } from '../db/schema';
import { notFound } from '../domain/errors';

const toSettings = (row: AccountRow): AccountSettings => ({
  requireDeviceApproval: row.requireDeviceApproval,
});

/** The account's settings (AccountSettings), read and changed by its owners and admins. */
export class AccountSettingsService {
  constructor(private readonly db: Db) {}

  async get(accountId: string): Promise<AccountSettings> {
    const [row] = await this.db.select().from(accounts).where(eq(accounts.id, accountId));
    if (!row) throw notFound('the account no longer exists');
    return toSettings(row);
  }

  /**
   * Sets what `change` gives; recorded when something changed. Requiring approval applies to devices
   * that sign in from now on: devices in the mesh stay in it.
   */
  async change(accountId: string, change: AccountSettingsChange, by: Actor): Promise<AccountSettings> {
    return this.db.transaction(async (tx) => {
      const [before] = await tx.select().from(accounts).where(eq(accounts.id, accountId)).for('update');
      if (!before) throw notFound('the account no longer exists');
      const wanted = change.requireDeviceApproval ?? before.requireDeviceApproval;
      if (wanted === before.requireDeviceApproval) return toSettings(before);
      const [after] = await tx
        .update(accounts)
        .set({ requireDeviceApproval: wanted })
        .where(eq(accounts.id, accountId))
        .returning();
      await recordAudit(tx, by, {
        action: 'account.settings-changed',
        accountId,
        target: { kind: 'account', id: accountId, name: before.name },
        details: { requireDeviceApproval: { from: before.requireDeviceApproval, to: wanted } },
      });
      return toSettings(after!);
    });
  }
}
