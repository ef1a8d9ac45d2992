import { DnsLabel, type DnsSettings, type Role } from '@trellis/proto';
import { asc, eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { type AccountRow, accounts, users } from '../db/schema';
import { badRequest, conflict, notFound } from '../domain/errors';
import type { EventBus } from '../events/event-bus';
import { checkedPassword, hashPassword, randomPassword } from '../security/passwords';
import { normaliseEmail } from './users.service';

export interface AccountInfo {
  id: string;
  name: string;
  createdAt: string;
  dnsMeshOnly: boolean;
}

export interface CreatedAccount {
  account: AccountInfo;
  owner: { id: string; email: string; role: Role };
  /** Set when the password was generated rather than given: shown once. */
  generatedPassword?: string;
}

export function toAccountInfo(row: AccountRow): AccountInfo {
  return { id: row.id, name: row.name, createdAt: row.createdAt.toISOString(), dnsMeshOnly: row.dnsMeshOnly };
}

/** What the DNS side of accounts needs: the zone, and the bus that tells every DNS server. */
export interface AccountsDnsConfig {
  zone: string;
  bus: EventBus;
  logger?: Logger;
}

export class AccountsService {
  constructor(
    private readonly db: Db,
    private readonly dns?: AccountsDnsConfig,
  ) {}

  async create(
    name: string,
    ownerEmail: string,
    password?: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<CreatedAccount> {
    if (!DnsLabel.safeParse(name).success) {
      throw badRequest(`account name "${name}" must be a DNS label: a-z, 0-9 and inner hyphens, 1-63 chars`);
    }
    const email = normaliseEmail(ownerEmail);
    const generated = password === undefined ? randomPassword() : undefined;
    const passwordHash = await hashPassword(generated ?? checkedPassword(password!));
    try {
      return await this.db.transaction(async (tx) => {
        const [account] = await tx.insert(accounts).values({ name }).returning();
        const [owner] = await tx
          .insert(users)
          .values({ accountId: account!.id, email, passwordHash, role: 'owner' })
          .returning();
        await recordAudit(tx, by, {
          action: 'account.created',
          accountId: account!.id,
          target: { kind: 'account', id: account!.id, name },
          details: { ownerEmail: email },
        });
        return {
          account: toAccountInfo(account!),
          owner: { id: owner!.id, email: owner!.email, role: owner!.role },
          generatedPassword: generated,
        };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`account "${name}" or user "${email}" already exists`);
      throw err;
    }
  }

  async list(): Promise<AccountInfo[]> {
    const rows = await this.db.select().from(accounts).orderBy(asc(accounts.createdAt), asc(accounts.name));
    return rows.map(toAccountInfo);
  }

  /**
   * Whether the account's device names are answered only to its own devices. Every instance's DNS
   * server is told at once over the bus; one that missed it reads it with its reload
   * (ZONE_RELOAD_MS).
   */
  async setDnsMeshOnly(name: string, meshOnly: boolean, by: Actor = SYSTEM_ACTOR): Promise<AccountInfo> {
    const row = await this.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(accounts)
        .set({ dnsMeshOnly: meshOnly })
        .where(eq(accounts.name, name))
        .returning();
      if (!updated) throw notFound(`unknown account "${name}"`);
      await recordAudit(tx, by, {
        action: 'account.dns-changed',
        accountId: updated.id,
        target: { kind: 'account', id: updated.id, name },
        details: { meshOnly },
      });
      return updated;
    });
    try {
      await this.dns?.bus.publish({ kind: 'account-dns', accountId: row.id, meshOnly });
    } catch (err) {
      // Committed: the DNS servers' reload finds it.
      this.dns?.logger?.warn({ err: (err as Error).message }, 'dns switch changed but not published');
    }
    return toAccountInfo(row);
  }

  /** The account's zone and mesh-only switch, as the dashboard shows them. */
  async dnsSettings(accountId: string): Promise<DnsSettings> {
    const row = await this.byId(accountId);
    const zone = this.dns?.zone ?? '';
    return { account: row.name, zone, accountZone: `${row.name}.${zone}`, meshOnly: row.dnsMeshOnly };
  }

  async count(): Promise<number> {
    return (await this.db.select({ id: accounts.id }).from(accounts).limit(1)).length;
  }

  async byName(name: string): Promise<AccountRow> {
    const [row] = await this.db.select().from(accounts).where(eq(accounts.name, name));
    if (!row) throw notFound(`unknown account "${name}"`);
    return row;
  }

  async byId(id: string): Promise<AccountRow> {
    const [row] = await this.db.select().from(accounts).where(eq(accounts.id, id));
    if (!row) throw notFound(`unknown account ${id}`);
    return row;
  }
}
