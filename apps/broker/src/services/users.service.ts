import { LoginRequest, type Role, Role as RoleSchema } from '@trellis/proto';
import { and, eq, gt, lt } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
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

  async create(accountId: string, email: string, role: string, password?: string, by: Actor = SYSTEM_ACTOR) {
    const parsedRole = RoleSchema.safeParse(role);
    if (!parsedRole.success) throw badRequest(`role must be one of owner, admin, member (got "${role}")`);
    const generated = password === undefined ? randomPassword() : undefined;
    const passwordHash = await hashPassword(generated ?? checkedPassword(password!));
    try {
      const row = await this.db.transaction(async (tx) => {
        const [created] = await tx
          .insert(users)
          .values({ accountId, email: normaliseEmail(email), passwordHash, role: parsedRole.data })
          .returning();
        await recordAudit(tx, by, {
          action: 'user.created',
          accountId,
          target: { kind: 'user', id: created!.id, name: created!.email },
          details: { role: created!.role },
        });
        return created!;
      });
      return { id: row.id, email: row.email, role: row.role, generatedPassword: generated };
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
  async resetOwner(accountId: string, password?: string, by: Actor = SYSTEM_ACTOR) {
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
      await recordAudit(tx, by, {
        action: 'user.owner-password-reset',
        accountId,
        target: { kind: 'user', id: owner.id, name: owner.email },
        details: { passwordGenerated: generated !== undefined },
      });
      return { id: owner.id, email: owner.email, role: owner.role, generatedPassword: generated };
    });
  }

  /**
   * Signs in; both outcomes go into the audit log with the client's `address` (a failure in the
   * account of the email's user, if there is one; never with the password).
   */
  async login(email: string, password: string, address: string | null = null) {
    const [row] = await this.db
      .select({ user: users, account: accounts })
      .from(users)
      .innerJoin(accounts, eq(users.accountId, accounts.id))
      .where(eq(users.email, email.trim().toLowerCase()));
    dummyHash ??= hashPassword('not a password');
    const ok = await verifyPassword(password, row?.user.passwordHash ?? (await dummyHash));
    const who = email.trim().toLowerCase();
    if (!row || !ok) {
      await recordAudit(
        this.db,
        { kind: 'user', userId: null, email: who, address },
        {
          action: 'user.sign-in-failed',
          accountId: row?.account.id ?? null,
          target: { kind: 'user', id: row?.user.id ?? null, name: who },
          details: { reason: 'wrong email or password' },
        },
      );
      throw unauthorized('wrong email or password');
    }
    const token = newSessionToken();
    const expiresAt = new Date(Date.now() + SESSION_TTL_SECONDS * 1000);
    // Expired sessions go as new ones come: the table holds only live ones (and the last day's).
    await this.db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
    await this.db.transaction(async (tx) => {
      await tx.insert(sessions).values({ userId: row.user.id, tokenHash: hashSecret(token), expiresAt });
      await recordAudit(
        tx,
        { kind: 'user', userId: row.user.id, email: row.user.email, address },
        {
          action: 'user.signed-in',
          accountId: row.account.id,
          target: { kind: 'user', id: row.user.id, name: row.user.email },
          details: {},
        },
      );
    });
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
  async logoutEverywhere(user: UserContext, by: Actor = SYSTEM_ACTOR): Promise<number> {
    return this.db.transaction(async (tx) => {
      const ended = await tx
        .delete(sessions)
        .where(eq(sessions.userId, user.userId))
        .returning({ id: sessions.id });
      await recordAudit(tx, by, {
        action: 'user.signed-out-everywhere',
        accountId: user.accountId,
        target: { kind: 'user', id: user.userId, name: user.email },
        details: { sessionsEnded: ended.length },
      });
      return ended.length;
    });
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
