import type { RelayHelloMessage, RelayStatusInfo } from '@trellis/proto';
import { and, asc, eq, isNotNull, isNull, or, type SQL, sql } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { accounts, relays, relayTokens } from '../db/schema';

/** What this process knows live about relays (the registry of connected relays). */
export interface LiveRelays {
  isOnline(relayId: string): boolean;
  allocationCount(relayId: string): number;
}

export interface RelaysConfig {
  live?: LiveRelays;
  /** A relay not connected here counts as online (on another instance) if seen within this; ms. */
  staleAfterMs: number;
}

/** The `relays` rows: one per token, written on each relay-hello. */
export class RelaysService {
  constructor(
    private readonly db: Db,
    private readonly config: RelaysConfig,
  ) {}

  /**
   * Records what the relay said in its hello; returns its stable id. Its first hello (a new row)
   * goes into the audit log of the token's account (`accountId`; null: a shared relay).
   */
  async upsert(
    tokenId: string,
    hello: RelayHelloMessage,
    registration: { accountId: string | null; by: Actor } = { accountId: null, by: SYSTEM_ACTOR },
  ): Promise<string> {
    const fields = {
      name: hello.name,
      publicAddress: hello.publicAddress,
      ports: hello.ports,
      tcp: hello.tcp ?? null,
      lastSeenAt: new Date(),
    };
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(relays)
        .values({ tokenId, ...fields })
        .onConflictDoUpdate({ target: relays.tokenId, set: fields })
        // xmax is 0 only for a row this statement inserted (not one it updated).
        .returning({ id: relays.id, inserted: sql<boolean>`(xmax = 0)` });
      if (row!.inserted) {
        await recordAudit(tx, registration.by, {
          action: 'relay.registered',
          accountId: registration.accountId,
          target: { kind: 'relay', id: row!.id, name: hello.name },
          details: { publicAddress: hello.publicAddress, tokenId },
        });
      }
      return row!.id;
    });
  }

  async touch(relayId: string): Promise<void> {
    await this.db.update(relays).set({ lastSeenAt: new Date() }).where(eq(relays.id, relayId));
  }

  /** Accounts with a registered private relay whose token is not revoked (online or not). */
  async accountsWithPrivateRelays(): Promise<Set<string>> {
    const rows = await this.db
      .selectDistinct({ accountId: relayTokens.accountId })
      .from(relays)
      .innerJoin(relayTokens, eq(relays.tokenId, relayTokens.id))
      .where(and(isNotNull(relayTokens.accountId), isNull(relayTokens.revokedAt)));
    return new Set(rows.flatMap((r) => (r.accountId === null ? [] : [r.accountId])));
  }

  /**
   * The relays (token not revoked) that were online when relays were last seen at all, i.e. when the
   * broker last ran: seen within `staleAfterMs` of the latest sighting. A restarted broker waits a
   * little for them to report the allocations they hold before allocating new ones.
   */
  async onlineAtLastSighting(): Promise<Array<{ id: string; accountId: string | null }>> {
    const rows = await this.db
      .select({ id: relays.id, accountId: relayTokens.accountId, lastSeenAt: relays.lastSeenAt })
      .from(relays)
      .innerJoin(relayTokens, eq(relays.tokenId, relayTokens.id))
      .where(and(isNull(relayTokens.revokedAt), isNotNull(relays.lastSeenAt)));
    const latest = Math.max(...rows.map((r) => r.lastSeenAt!.getTime()));
    return rows
      .filter((r) => r.lastSeenAt!.getTime() >= latest - this.config.staleAfterMs)
      .map(({ id, accountId }) => ({ id, accountId }));
  }

  /** Every relay (admin), or those that may serve `accountId`: its own and the shared ones, not revoked. */
  async list(accountId?: string): Promise<RelayStatusInfo[]> {
    let where: SQL | undefined;
    if (accountId !== undefined) {
      where = and(
        or(eq(relayTokens.accountId, accountId), isNull(relayTokens.accountId)),
        isNull(relayTokens.revokedAt),
      );
    }
    const rows = await this.db
      .select({ relay: relays, accountName: accounts.name })
      .from(relays)
      .innerJoin(relayTokens, eq(relays.tokenId, relayTokens.id))
      .leftJoin(accounts, eq(relayTokens.accountId, accounts.id))
      .where(where)
      .orderBy(asc(relays.name), asc(relays.id));
    const staleBefore = Date.now() - this.config.staleAfterMs;
    const { live } = this.config;
    return rows.map(({ relay, accountName }) => ({
      id: relay.id,
      name: relay.name,
      accountName,
      publicAddress: relay.publicAddress,
      online:
        live?.isOnline(relay.id) ?? (relay.lastSeenAt !== null && relay.lastSeenAt.getTime() > staleBefore),
      allocations: live?.allocationCount(relay.id) ?? 0,
      lastSeenAt: relay.lastSeenAt?.toISOString() ?? null,
    }));
  }
}
