import { LoginRequest, type Role, Role as RoleSchema } from '@trellis/proto';
import { and, eq, gt, lt } from 'drizzle-orm';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { accounts, sessions, users } from '../db/schema';
import { badRequest, conflict, forbidden, notFound, unauthorized } from '../domain/errors';
import { checkedPassword, hashPassword, randomPassword, verifyPassword } from '../security/passwords';
import { hashSecret, newSessionToken } from '../security/tokens';

export const SESSION_TTL_SECONDS = 24 * 3600;

/** Who is calling the HTTP API. */
export interface UserContext {
  userId: string;
  email: string;
  role: Role;
  accountId: string;
  accountName: string;
}

const Email = LoginRequest.shape.email;

export function normaliseEmail(email: string): string {
  const e = email.trim().toLowerCase();
  if (!Email.safeParse(e).success) throw badRequest(`"${email}" is not an email address`);
  return e;
}

export function requireAdmin(user: UserContext): void {
  if (user.role !== 'owner' && user.role !== 'admin') throw forbidden('this needs the owner or admin role');
}

/** Compared against when the email is unknown, so both failures take the same time. */
let dummyHash: Promise<string> | undefined;

export class UsersService {
  constructor(private readonly db: Db) {}

  async create(accountId: string, email: string, role: string, password?: string) {
    const parsedRole = RoleSchema.safeParse(role);
    if (!parsedRole.success) throw badRequest(`role must be one of owner, admin, member (got "${role}")`);
    const generated = password === undefined ? randomPassword() : undefined;
    const passwordHash = await hashPassword(generated ?? checkedPassword(password!));
    try {
      const [row] = await this.db
        .insert(users)
        .values({ accountId, email: normaliseEmail(email), passwordHash, role: parsedRole.data })
        .returning();
      return { id: row!.id, email: row!.email, role: row!.role, generatedPassword: generated };
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`user "${email}" already exists`);
      throw err;
    }
  }

  /**
   * Gives the account's owner a new password (generated when none is given, shown once) and ends
   * the owner's sessions: the way back in when the first password was never seen (a first start
   * killed before it printed it) or was lost.
   */
  async resetOwner(accountId: string, password?: string) {
    const generated = password === undefined ? randomPassword() : undefined;
    const passwordHash = await hashPassword(generated ?? checkedPassword(password!));
    return this.db.transaction(async (tx) => {
      const [owner] = await tx
        .update(users)
        .set({ passwordHash })
        .where(and(eq(users.accountId, accountId), eq(users.role, 'owner')))
        .returning();
      if (!owner) throw notFound('the account has no owner');
      await tx.delete(sessions).where(eq(sessions.userId, owner.id));
      return { id: owner.id, email: owner.email, role: owner.role, generatedPassword: generated };
    });
  }

  async login(email: string, password: string) {
    const [row] = await this.db
      .select({ user: users, account: accounts })
      .from(users)
      .innerJoin(accounts, eq(users.accountId, accounts.id))
      .where(eq(users.email, email.trim().toLowerCase()));
    dummyHash ??= hashPassword('not a password');
    const ok = await verifyPassword(password, row?.user.passwordHash ?? (await dummyHash));
    if (!row || !ok) throw unauthorized('wrong email or password');
    const token = newSessionToken();
    const expiresAt = new Date(Date.now() + SESSION_TTL_SECONDS * 1000);
    // Expired sessions go as new ones come: the table holds only live ones (and the last day's).
    await this.db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
    await this.db.insert(sessions).values({ userId: row.user.id, tokenHash: hashSecret(token), expiresAt });
    return {
      token,
      expiresAt: expiresAt.toISOString(),
      user: {
        id: row.user.id,
        email: row.user.email,
        role: row.user.role,
        accountId: row.account.id,
        accountName: row.account.name,
      },
    };
  }

  /** Ends one session (its token); nothing happens for an unknown one. */
  async logout(token: string): Promise<void> {
    await this.db.delete(sessions).where(eq(sessions.tokenHash, hashSecret(token)));
  }

  /** Ends every session of the user ("sign out everywhere"); returns how many there were. */
  async logoutEverywhere(userId: string): Promise<number> {
    const ended = await this.db
      .delete(sessions)
      .where(eq(sessions.userId, userId))
      .returning({ id: sessions.id });
    return ended.length;
  }

  /** Resolves a bearer token to its user; 401 for anything missing, unknown or expired. */
  async authenticate(token: string): Promise<UserContext> {
    return (await this.session(token)).user;
  }

  /** The same with when the session ends. */
  async session(token: string): Promise<{ user: UserContext; expiresAt: string }> {
    const [row] = await this.db
      .select({ user: users, account: accounts, expiresAt: sessions.expiresAt })
      .from(sessions)
      .innerJoin(users, eq(sessions.userId, users.id))
      .innerJoin(accounts, eq(users.accountId, accounts.id))
      .where(and(eq(sessions.tokenHash, hashSecret(token)), gt(sessions.expiresAt, new Date())));
    if (!row) throw unauthorized('invalid or expired token');
    const user = {
      userId: row.user.id,
      email: row.user.email,
      role: row.user.role,
      accountId: row.account.id,
      accountName: row.account.name,
    };
    return { user, expiresAt: row.expiresAt.toISOString() };
  }
}
