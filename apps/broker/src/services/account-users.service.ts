import type { AccountUserInfo, RemovedUser, Role } from '@trellis/proto';
import { and, asc, count, eq, inArray, isNull, max } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { devices, sessions, setupKeys, type UserRow, users } from '../db/schema';
import { conflict, forbidden, notFound } from '../domain/errors';
import type { DevicesService } from './devices.service';
import type { Tx } from './tx';
import { requireAdmin, type UserContext, type UsersService } from './users.service';

const isPrivileged = (role: Role) => role === 'owner' || role === 'admin';

/**
 * An account's users as its owners and admins manage them. The rules, checked against the rows as
 * they are inside the transaction (a concurrent change cannot slip past them):
 * - owners and admins manage users; only an owner creates, promotes to, demotes from or removes
 *   `owner`/`admin` (an admin manages members only);
 * - the last owner is neither demoted nor removed; nobody changes their own role or removes themselves;
 * - removing a user ends all their sessions (browser and API tokens) and revokes the setup keys they
 *   created at once, then removes their devices (peers drop them as for any removed device).
 * Roles are read from the database on every request, so a change applies to the user's next one.
 * A user of another account is "not found", exactly like one that does not exist.
 */
export class AccountUsersService {
  constructor(
    private readonly db: Db,
    private readonly users: UsersService,
    private readonly devices: DevicesService,
  ) {}

  async list(actor: UserContext): Promise<AccountUserInfo[]> {
    requireAdmin(actor);
    const rows = await this.db
      .select()
      .from(users)
      .where(eq(users.accountId, actor.accountId))
      .orderBy(asc(users.createdAt), asc(users.email));
    return this.infos(actor.accountId, rows);
  }

  /** `by`: who the audit log names (the caller, with the address they called from). */
  async create(
    actor: UserContext,
    email: string,
    role: Role,
    password: string,
    by?: Actor,
  ): Promise<AccountUserInfo> {
    requireAdmin(actor);
    if (isPrivileged(role) && actor.role !== 'owner')
      throw forbidden(`only an owner can add a user as ${role}`);
    const created = await this.users
      .create(actor.accountId, email, role, password, by)
      .catch((err: unknown) => {
        // Sign-in is by email alone, so an email is unique on the whole broker: said without saying where.
        if ((err as { status?: number }).status === 409)
          throw conflict(`the email ${email} is already in use`);
        throw err;
      });
    return this.one(actor.accountId, created.id);
  }

  /** `by`: who the audit log names, as for create. */
  async setRole(actor: UserContext, userId: string, role: Role, by?: Actor): Promise<AccountUserInfo> {
    requireAdmin(actor);
    await this.db.transaction(async (tx) => {
      const { me, target } = await this.lockPair(tx, actor, userId);
      if (me.id === target.id) throw forbidden('you cannot change your own role: ask another owner');
      if ((isPrivileged(role) || isPrivileged(target.role)) && me.role !== 'owner') {
        throw forbidden('only an owner can grant or take the owner and admin roles');
      }
      if (target.role === 'owner' && role !== 'owner') await this.requireAnotherOwner(tx, actor.accountId);
      await tx.update(users).set({ role }).where(eq(users.id, target.id));
      if (target.role !== role) {
        await recordAudit(tx, by ?? SYSTEM_ACTOR, {
          action: 'user.role-changed',
          accountId: actor.accountId,
          target: { kind: 'user', id: target.id, name: target.email },
          details: { from: target.role, to: role },
        });
      }
    });
    return this.one(actor.accountId, userId);
  }

  async remove(actor: UserContext, userId: string, by: Actor = SYSTEM_ACTOR): Promise<RemovedUser> {
    requireAdmin(actor);
    const info = await this.one(actor.accountId, userId);
    const removed = await this.db.transaction(async (tx) => {
      const { me, target } = await this.lockPair(tx, actor, userId);
      if (me.id === target.id) throw forbidden('you cannot remove yourself: ask another owner');
      if (isPrivileged(target.role) && me.role !== 'owner') {
        throw forbidden(`only an owner can remove an ${target.role}`);
      }
      if (target.role === 'owner') await this.requireAnotherOwner(tx, actor.accountId);
      const ended = await tx
        .delete(sessions)
        .where(eq(sessions.userId, target.id))
        .returning({ id: sessions.id });
      const revoked = await tx
        .update(setupKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(setupKeys.createdBy, target.id), isNull(setupKeys.revokedAt)))
        .returning({ id: setupKeys.id });
      await tx.delete(users).where(eq(users.id, target.id));
      await recordAudit(tx, by, {
        action: 'user.removed',
        accountId: actor.accountId,
        target: { kind: 'user', id: target.id, name: target.email },
        details: { role: target.role, sessionsEnded: ended.length, setupKeysRevoked: revoked.length },
      });
      return { target, sessionsEnded: ended.length, setupKeysRevoked: revoked.length };
    });
    // After the user is gone (no session of theirs can enroll another): each device as an admin's removal.
    const theirs = await this.db
      .select({ id: devices.id })
      .from(devices)
      .where(and(eq(devices.accountId, actor.accountId), eq(devices.userEmail, removed.target.email)));
    let devicesRemoved = 0;
    for (const d of theirs) {
      try {
        await this.devices.remove(actor.accountId, actor.accountName, d.id, by);
        devicesRemoved++;
      } catch (err) {
        if ((err as { status?: number }).status !== 404) throw err; // removed meanwhile
      }
    }
    return {
      user: { ...info, role: removed.target.role },
      sessionsEnded: removed.sessionsEnded,
      setupKeysRevoked: removed.setupKeysRevoked,
      devicesRemoved,
    };
  }

  /** The caller's and the target's rows, locked, as they are now (the caller's role may have changed). */
  private async lockPair(tx: Tx, actor: UserContext, userId: string) {
    const rows = await tx
      .select()
      .from(users)
      .where(and(eq(users.accountId, actor.accountId), inArray(users.id, [actor.userId, userId])))
      .for('update');
    const me = rows.find((r) => r.id === actor.userId);
    const target = rows.find((r) => r.id === userId);
    if (!me) throw forbidden('your user no longer exists');
    requireAdmin({ ...actor, role: me.role });
    if (!target) throw notFound(`no user ${userId} in this account`);
    return { me, target };
  }

  /** Locks the account's owners: two owners demoting each other at once cannot leave none. */
  private async requireAnotherOwner(tx: Tx, accountId: string): Promise<void> {
    const owners = await tx
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.accountId, accountId), eq(users.role, 'owner')))
      .for('update');
    if (owners.length < 2) throw conflict('the account needs an owner: make another user owner first');
  }

  private async one(accountId: string, userId: string): Promise<AccountUserInfo> {
    const rows = await this.db
      .select()
      .from(users)
      .where(and(eq(users.accountId, accountId), eq(users.id, userId)));
    if (rows.length === 0) throw notFound(`no user ${userId} in this account`);
    return (await this.infos(accountId, rows))[0]!;
  }

  /** Adds each user's latest sign-in on record and their number of devices. */
  private async infos(accountId: string, rows: UserRow[]): Promise<AccountUserInfo[]> {
    if (rows.length === 0) return [];
    const [signIns, deviceCounts] = await Promise.all([
      this.db
        .select({ userId: sessions.userId, at: max(sessions.createdAt) })
        .from(sessions)
        .where(
          inArray(
            sessions.userId,
            rows.map((r) => r.id),
          ),
        )
        .groupBy(sessions.userId),
      this.db
        .select({ email: devices.userEmail, n: count() })
        .from(devices)
        .where(
          and(
            eq(devices.accountId, accountId),
            inArray(
              devices.userEmail,
              rows.map((r) => r.email),
            ),
          ),
        )
        .groupBy(devices.userEmail),
    ]);
    const lastSignIn = new Map(signIns.map((s) => [s.userId, s.at]));
    const deviceCount = new Map(deviceCounts.map((d) => [d.email, d.n]));
    return rows.map((r) => ({
      id: r.id,
      email: r.email,
      role: r.role,
      createdAt: r.createdAt.toISOString(),
      lastSignInAt: toIso(lastSignIn.get(r.id)),
      devices: deviceCount.get(r.email) ?? 0,
    }));
  }
}

/** max() over a timestamp comes back as a Date, or as text from some drivers. */
function toIso(at: Date | string | null | undefined): string | null {
  if (at === null || at === undefined) return null;
  return new Date(at).toISOString();
}
