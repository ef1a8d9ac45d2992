import type { OidcSignInError } from '@trellis/proto';
import { eq, lt } from 'drizzle-orm';
import { recordAudit } from '../audit/audit-log';
import type { Db } from '../db/database';
import { isUniqueViolation } from '../db/database';
import { accounts, sessions, users } from '../db/schema';
import { hashPassword, randomPassword } from '../security/passwords';
import { hashSecret, newSessionToken } from '../security/tokens';
import { normaliseEmail, SESSION_TTL_SECONDS } from '../services/users.service';

/** A sign-in that ends on the dashboard's sign-in page with this reason. */
export class OidcFailure extends Error {
  constructor(
    readonly reason: OidcSignInError,
    message: string,
  ) {
    super(message);
  }
}

export interface OidcUser {
  id: string;
  email: string;
  role: string;
  accountId: string;
  created: boolean;
}

/**
 * The user a provider vouched for (its verified email): the one with that email in `accountName`,
 * who keeps their role, or a new one there with `role`. A user of that email in another account is
 * refused and left as they are (emails are unique across accounts).
 */
export async function oidcUser(
  db: Db,
  accountName: string,
  role: 'member' | 'admin',
  rawEmail: string,
  address: string | null,
): Promise<OidcUser> {
  const email = normaliseEmail(rawEmail);
  const [account] = await db.select().from(accounts).where(eq(accounts.name, accountName));
  if (!account) throw new OidcFailure('oidc_no_account', `OIDC account "${accountName}" does not exist`);
  for (let attempt = 0; attempt < 2; attempt++) {
    const [found] = await db.select().from(users).where(eq(users.email, email));
    if (found) {
      if (found.accountId !== account.id) {
        throw new OidcFailure('oidc_other_account', 'the email belongs to a user of another account');
      }
      return { id: found.id, email, role: found.role, accountId: account.id, created: false };
    }
    // No password anyone knows: this user signs in through the provider (an admin may set one later).
    const passwordHash = await hashPassword(randomPassword());
    try {
      const id = await db.transaction(async (tx) => {
        const [row] = await tx
          .insert(users)
          .values({ accountId: account.id, email, passwordHash, role })
          .returning();
        await recordAudit(
          tx,
          { kind: 'user', userId: row!.id, email, address },
          {
            action: 'user.created',
            accountId: account.id,
            target: { kind: 'user', id: row!.id, name: email },
            details: { role },
          },
        );
        return row!.id;
      });
      return { id, email, role, accountId: account.id, created: true };
    } catch (err) {
      // The same user signing in twice at once: the other sign-in created them; match them.
      if (!isUniqueViolation(err)) throw err;
    }
  }
  throw new OidcFailure('oidc_failed', 'the user could be neither found nor created');
}

/** A new web session for the user, as a password sign-in makes: the token, shown only to the cookie. */
export async function openSession(
  db: Db,
  user: OidcUser,
  address: string | null,
): Promise<{ token: string; expiresAt: Date }> {
  const token = newSessionToken();
  const expiresAt = new Date(Date.now() + SESSION_TTL_SECONDS * 1000);
  await db.delete(sessions).where(lt(sessions.expiresAt, new Date()));
  await db.transaction(async (tx) => {
    await tx.insert(sessions).values({ userId: user.id, tokenHash: hashSecret(token), expiresAt });
    await recordAudit(
      tx,
      { kind: 'user', userId: user.id, email: user.email, address },
      {
        action: 'user.signed-in',
        accountId: user.accountId,
        target: { kind: 'user', id: user.id, name: user.email },
        details: {},
      },
    );
  });
  return { token, expiresAt };
}
