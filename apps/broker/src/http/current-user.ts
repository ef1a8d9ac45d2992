import type { IncomingMessage } from 'node:http';
import { unauthorized } from '../domain/errors';
import type { UserContext, UsersService } from '../services/users.service';

/** Resolves `Authorization: Bearer <token>` to the calling user, or throws 401. */
export async function currentUser(req: IncomingMessage, users: UsersService): Promise<UserContext> {
  const header = req.headers.authorization;
  if (!header) throw unauthorized('missing Authorization: Bearer token');
  const m = /^Bearer ([A-Za-z0-9_\-.~+/]{1,512}=*)$/.exec(header.trim());
  if (!m) throw unauthorized('malformed Authorization header, expected "Bearer <token>"');
  return users.authenticate(m[1]!);
}
