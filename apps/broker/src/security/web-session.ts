import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parse, serialize } from 'cookie';

/**
 * The dashboard's session cookie: the same session token the API takes as a bearer token. The
 * `__Host-` prefix makes browsers refuse it unless it is Secure, for `/` and of this host alone,
 * so a sibling subdomain cannot plant a session of its own.
 */
export const SESSION_COOKIE = '__Host-trellis_session';
/** Header a cookie-authenticated request that changes anything must carry (double submit, keyed). */
export const CSRF_HEADER = 'x-trellis-csrf';

/**
 * The CSRF token of a session: derived from the session token, so nothing more is stored, and
 * only a page that could read the session's own API answers (same origin) can know it.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', 'trellis csrf v1').update(sessionToken).digest('base64url');
}

export function csrfMatches(sessionToken: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const want = Buffer.from(csrfTokenFor(sessionToken));
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** HttpOnly (no script reads it), Secure (HTTPS only), SameSite=Strict (no cross-site request sends it). */
export function sessionCookie(token: string, maxAgeSeconds: number): string {
  return serialize(SESSION_COOKIE, token, {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: maxAgeSeconds,
  });
}

export function clearedSessionCookie(): string {
  return serialize(SESSION_COOKIE, '', {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path: '/',
    maxAge: 0,
  });
}

export function sessionFromCookie(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  return parse(header)[SESSION_COOKIE] || undefined;
}
