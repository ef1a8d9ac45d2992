import { DnsLabel, type Role } from '@trellis/proto';
import { asc, eq } from 'drizzle-orm';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { type AccountRow, accounts, users } from '../db/schema';
import { badRequest, conflict, notFound } from '../domain/errors';
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

export class AccountsService {
  constructor(private readonly db: Db) {}

  async create(name: string, ownerEmail: string, password?: string): Promise<CreatedAccount> {
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
   * Whether the account's device names are answered only to its own devices. The DNS server of
   * every instance reads it within its reload interval (ZONE_RELOAD_MS).
   */
  async setDnsMeshOnly(name: string, meshOnly: boolean): Promise<AccountInfo> {
    const [row] = await this.db
      .update(accounts)
      .set({ dnsMeshOnly: meshOnly })
      .where(eq(accounts.name, name))
      .returning();
    if (!row) throw notFound(`unknown account "${name}"`);
    return toAccountInfo(row);
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
