import type { IncomingMessage } from 'node:http';
import { DomainError, unauthorized } from '../domain/errors';
import { CSRF_HEADER, csrfMatches, sessionFromCookie } from '../security/web-session';
import type { UserContext, UsersService } from '../services/users.service';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The session token of a request: `Authorization: Bearer <token>` (CLI, scripts), else the
 * dashboard's session cookie, which a request that changes anything must back with the session's
 * CSRF token in a header (a cookie is sent by the browser on its own; the header is not).
 */
export function sessionToken(req: IncomingMessage): string {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer ([A-Za-z0-9_\-.~+/]{1,512}=*)$/.exec(header.trim());
    if (!m) throw unauthorized('malformed Authorization header, expected "Bearer <token>"');
    return m[1]!;
  }
  const cookie = sessionFromCookie(req);
  if (!cookie) throw unauthorized('not signed in: missing Authorization: Bearer token or session cookie');
  if (!SAFE_METHODS.has(req.method ?? 'GET') && !csrfMatches(cookie, req.headers[CSRF_HEADER])) {
    throw new DomainError(403, 'csrf', `missing or wrong ${CSRF_HEADER} header`);
  }
  return cookie;
}

/** Resolves the request's session to the calling user, or throws 401 (403 for a failed CSRF check). */
export async function currentUser(req: IncomingMessage, users: UsersService): Promise<UserContext> {
  return users.authenticate(sessionToken(req));
}
