import type { SetupKeyInfo } from '@trellis/proto';
import { and, asc, eq, isNull } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { type SetupKeyRow, setupKeys } from '../db/schema';
import { notFound } from '../domain/errors';
import { effectiveUsageLimit, setupKeyState } from '../domain/setup-key-rules';
import { currentParsedPolicy } from '../policy/policy-store';
import { blockCidr, checkTags, OPERATOR, type TagActor } from '../policy/tag-rules';
import { hashSecret, newSetupKey, setupKeyPrefix } from '../security/tokens';

export interface CreateSetupKeyOptions {
  name: string;
  reusable: boolean;
  expiresInSeconds?: number;
  usageLimit?: number;
  /** Tags the enrolled devices get (the creator must own each one in the policy). */
  tags?: readonly string[];
  /** Policy block the enrolled devices get their addresses from. */
  cidr?: string;
}

/** Who creates a key: the devices it enrolls belong to `userId` (null: the operator, nobody's). */
export interface SetupKeyCreator extends TagActor {
  userId: string | null;
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
    tags: row.tags,
    cidr: row.cidr,
  };
}

export class SetupKeysService {
  constructor(private readonly db: Db) {}

  /** Returns the key itself (shown once) and what is stored about it (never the key). */
  async create(
    accountId: string,
    opts: CreateSetupKeyOptions,
    creator: SetupKeyCreator = { ...OPERATOR, userId: null },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{ key: string; setupKey: SetupKeyInfo }> {
    const tags = [...new Set(opts.tags ?? [])].sort();
    if (tags.length > 0 || opts.cidr !== undefined) {
      const policy = await currentParsedPolicy(this.db, accountId);
      checkTags(policy, creator, tags);
      if (opts.cidr !== undefined) blockCidr(policy, opts.cidr);
    }
    const key = newSetupKey();
    const row = await this.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(setupKeys)
        .values({
          accountId,
          name: opts.name,
          keyHash: hashSecret(key),
          prefix: setupKeyPrefix(key),
          reusable: opts.reusable,
          usageLimit: effectiveUsageLimit(opts.reusable, opts.usageLimit),
          expiresAt: opts.expiresInSeconds ? new Date(Date.now() + opts.expiresInSeconds * 1000) : null,
          tags,
          cidr: opts.cidr ?? null,
          createdBy: creator.userId,
        })
        .returning();
      await recordAudit(tx, by, {
        action: 'setup-key.created',
        accountId,
        target: { kind: 'setup-key', id: created!.id, name: created!.name },
        details: {
          prefix: created!.prefix,
          reusable: created!.reusable,
          usageLimit: created!.usageLimit,
          expiresAt: created!.expiresAt?.toISOString() ?? null,
          tags: created!.tags,
          cidr: created!.cidr,
        },
      });
      return created!;
    });
    return { key, setupKey: toSetupKeyInfo(row) };
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
  async revoke(accountId: string, id: string, by: Actor = SYSTEM_ACTOR): Promise<SetupKeyInfo> {
    const row = await this.db.transaction(async (tx) => {
      const [revoked] = await tx
        .update(setupKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(setupKeys.id, id), eq(setupKeys.accountId, accountId), isNull(setupKeys.revokedAt)))
        .returning();
      if (revoked) {
        await recordAudit(tx, by, {
          action: 'setup-key.revoked',
          accountId,
          target: { kind: 'setup-key', id: revoked.id, name: revoked.name },
          details: { prefix: revoked.prefix },
        });
      }
      return revoked;
    });
    if (row) return toSetupKeyInfo(row);
    const [existing] = await this.db
      .select()
      .from(setupKeys)
      .where(and(eq(setupKeys.id, id), eq(setupKeys.accountId, accountId)));
    if (!existing) throw notFound(`no setup key ${id} in this account`);
    return toSetupKeyInfo(existing);
  }
}
