import type { SetupKeyInfo } from '@trellis/proto';
import { and, asc, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/database';
import { type SetupKeyRow, setupKeys } from '../db/schema';
import { notFound } from '../domain/errors';
import { effectiveUsageLimit, setupKeyState } from '../domain/setup-key-rules';
import { hashSecret, newSetupKey, setupKeyPrefix } from '../security/tokens';

export interface CreateSetupKeyOptions {
  name: string;
  reusable: boolean;
  expiresInSeconds?: number;
  usageLimit?: number;
}

export function toSetupKeyInfo(row: SetupKeyRow, now = new Date()): SetupKeyInfo {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    reusable: row.reusable,
    usageLimit: row.usageLimit,
    usedCount: row.usedCount,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    valid: setupKeyState(row, now) === 'valid',
  };
}

export class SetupKeysService {
  constructor(private readonly db: Db) {}

  /** Returns the key itself (shown once) and what is stored about it (never the key). */
  async create(
    accountId: string,
    opts: CreateSetupKeyOptions,
  ): Promise<{ key: string; setupKey: SetupKeyInfo }> {
    const key = newSetupKey();
    const [row] = await this.db
      .insert(setupKeys)
      .values({
        accountId,
        name: opts.name,
        keyHash: hashSecret(key),
        prefix: setupKeyPrefix(key),
        reusable: opts.reusable,
        usageLimit: effectiveUsageLimit(opts.reusable, opts.usageLimit),
        expiresAt: opts.expiresInSeconds ? new Date(Date.now() + opts.expiresInSeconds * 1000) : null,
      })
      .returning();
    return { key, setupKey: toSetupKeyInfo(row!) };
  }

  async list(accountId: string): Promise<SetupKeyInfo[]> {
    const rows = await this.db
      .select()
      .from(setupKeys)
      .where(eq(setupKeys.accountId, accountId))
      .orderBy(asc(setupKeys.createdAt), asc(setupKeys.id));
    const now = new Date();
    return rows.map((r) => toSetupKeyInfo(r, now));
  }

  /** Revoking twice is fine; a key of another account is "not found", as if it did not exist. */
  async revoke(accountId: string, id: string): Promise<SetupKeyInfo> {
    const [row] = await this.db
      .update(setupKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(setupKeys.id, id), eq(setupKeys.accountId, accountId), isNull(setupKeys.revokedAt)))
      .returning();
    if (row) return toSetupKeyInfo(row);
    const [existing] = await this.db
      .select()
      .from(setupKeys)
      .where(and(eq(setupKeys.id, id), eq(setupKeys.accountId, accountId)));
    if (!existing) throw notFound(`no setup key ${id} in this account`);
    return toSetupKeyInfo(existing);
  }
}
