import { type CreateRelayTokenResponse, RelayToken, type RelayTokenInfo } from '@trellis/proto';
import { and, asc, eq, inArray, isNotNull, isNull, type SQL } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { accounts, type RelayTokenRow, relayTokens } from '../db/schema';
import { notFound } from '../domain/errors';
import { hashSecret, newRelayToken, relayTokenPrefix } from '../security/tokens';

/** Whose relay a token makes: the scope always comes from the token, never from the relay. */
export interface VerifiedRelayToken {
  tokenId: string;
  /** null: a shared (operator) relay. */
  accountId: string | null;
  accountName: string | null;
}

export type RelayTokenCheck =
  | { ok: true; token: VerifiedRelayToken }
  | { ok: false; reason: 'unknown' | 'revoked' };

function toRelayTokenInfo(row: RelayTokenRow, accountName: string | null): RelayTokenInfo {
  return {
    id: row.id,
    name: row.name,
    accountName,
    prefix: row.prefix,
    createdAt: row.createdAt.toISOString(),
    revokedAt: row.revokedAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  };
}

/**
 * Relay tokens. `accountId` arguments scope a call to one account (the HTTP API); admin calls pass
 * none and see every token. A token of another account is "not found", as if it did not exist.
 */
export class RelayTokensService {
  private readonly revokedListeners = new Set<(tokenId: string) => void>();

  constructor(private readonly db: Db) {}

  /** Called after a revocation through this service (the relay control server disconnects the relay). */
  onRevoked(fn: (tokenId: string) => void): () => void {
    this.revokedListeners.add(fn);
    return () => this.revokedListeners.delete(fn);
  }

  /** Returns the token itself (shown once) and what is stored about it (never the token). */
  async create(
    accountId: string | null,
    name: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<CreateRelayTokenResponse> {
    const token = newRelayToken();
    const accountName = await this.accountName(accountId);
    const row = await this.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(relayTokens)
        .values({ accountId, name, tokenHash: hashSecret(token), prefix: relayTokenPrefix(token) })
        .returning();
      await recordAudit(tx, by, {
        action: 'relay-token.created',
        accountId,
        target: { kind: 'relay-token', id: created!.id, name },
        details: { prefix: created!.prefix, shared: accountId === null },
      });
      return created!;
    });
    return { token, relayToken: toRelayTokenInfo(row, accountName) };
  }

  /** Every token, or only one account's. */
  async list(accountId?: string): Promise<RelayTokenInfo[]> {
    return this.select(accountId === undefined ? undefined : eq(relayTokens.accountId, accountId));
  }

  /** Revoking twice is fine. */
  async revoke(id: string, accountId?: string, by: Actor = SYSTEM_ACTOR): Promise<RelayTokenInfo> {
    const scope =
      accountId === undefined
        ? eq(relayTokens.id, id)
        : and(eq(relayTokens.id, id), eq(relayTokens.accountId, accountId));
    await this.db.transaction(async (tx) => {
      const [revoked] = await tx
        .update(relayTokens)
        .set({ revokedAt: new Date() })
        .where(and(scope, isNull(relayTokens.revokedAt)))
        .returning();
      if (!revoked) return;
      await recordAudit(tx, by, {
        action: 'relay-token.revoked',
        accountId: revoked.accountId,
        target: { kind: 'relay-token', id: revoked.id, name: revoked.name },
        details: { prefix: revoked.prefix, shared: revoked.accountId === null },
      });
    });
    const [info] = await this.select(scope);
    if (!info) throw notFound(`no relay token ${id}${accountId === undefined ? '' : ' in this account'}`);
    for (const fn of this.revokedListeners) fn(id);
    return info;
  }

  /** Looks the token up by its hash (no secret is ever compared byte by byte). */
  async verify(token: string): Promise<RelayTokenCheck> {
    if (!RelayToken.safeParse(token).success) return { ok: false, reason: 'unknown' };
    const [row] = await this.db
      .select({ token: relayTokens, accountName: accounts.name })
      .from(relayTokens)
      .leftJoin(accounts, eq(relayTokens.accountId, accounts.id))
      .where(eq(relayTokens.tokenHash, hashSecret(token)));
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.token.revokedAt) return { ok: false, reason: 'revoked' };
    return {
      ok: true,
      token: { tokenId: row.token.id, accountId: row.token.accountId, accountName: row.accountName },
    };
  }

  async markUsed(tokenId: string): Promise<void> {
    await this.db.update(relayTokens).set({ lastUsedAt: new Date() }).where(eq(relayTokens.id, tokenId));
  }

  /** Which of these tokens are revoked (revocations made by other processes reach relays this way). */
  async revokedAmong(tokenIds: string[]): Promise<string[]> {
    if (tokenIds.length === 0) return [];
    const rows = await this.db
      .select({ id: relayTokens.id })
      .from(relayTokens)
      .where(and(inArray(relayTokens.id, tokenIds), isNotNull(relayTokens.revokedAt)));
    return rows.map((r) => r.id);
  }

  private async select(where: SQL | undefined): Promise<RelayTokenInfo[]> {
    const rows = await this.db
      .select({ token: relayTokens, accountName: accounts.name })
      .from(relayTokens)
      .leftJoin(accounts, eq(relayTokens.accountId, accounts.id))
      .where(where)
      .orderBy(asc(relayTokens.createdAt), asc(relayTokens.id));
    return rows.map((r) => toRelayTokenInfo(r.token, r.accountName));
  }

  private async accountName(accountId: string | null): Promise<string | null> {
    if (accountId === null) return null;
    const [row] = await this.db
      .select({ name: accounts.name })
      .from(accounts)
      .where(eq(accounts.id, accountId));
    if (!row) throw notFound(`unknown account ${accountId}`);
    return row.name;
  }
}
