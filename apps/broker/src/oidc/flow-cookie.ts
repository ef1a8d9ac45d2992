import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parse, serialize } from 'cookie';
import { z } from 'zod';

/**
 * What a sign-in at the provider must come back with, kept in the browser that started it: an
 * HttpOnly cookie, encrypted and authenticated (AES-256-GCM) with a key derived from the client
 * secret, so every broker instance of the deployment can read it and nobody else can read or forge it.
 */
export const FLOW_COOKIE = '__Host-trellis_oidc';
/** A sign-in at the provider has this long to come back. */
export const FLOW_TTL_SECONDS = 600;

const Flow = z.object({
  state: z.string(),
  nonce: z.string(),
  verifier: z.string(),
  returnTo: z.string(),
  redirectUri: z.string(),
  expiresAt: z.number(),
});
export type Flow = z.infer<typeof Flow>;

function keyFor(clientSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clientSecret, 'trellis', 'oidc flow cookie v1', 32));
}

/**
 * SameSite=Lax, not Strict: the provider sends the browser back with a cross-site redirect, on
 * which a Strict cookie would not come along. Secure, __Host-: HTTPS, this host, path / only.
 */
export function flowCookie(clientSecret: string, flow: Omit<Flow, 'expiresAt'>, now = Date.now()): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyFor(clientSecret), iv);
  const body = JSON.stringify({ ...flow, expiresAt: now + FLOW_TTL_SECONDS * 1000 });
  const sealed = Buffer.concat([iv, cipher.update(body, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return serialize(FLOW_COOKIE, sealed.toString('base64url'), {
    httpOnly: true,
    secure: true,
    sameSite: 'lax',
    path: '/',
    maxAge: FLOW_TTL_SECONDS,
  });
}

export function clearedFlowCookie(): string {
  return serialize(FLOW_COOKIE, '', { httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: 0 });
}

/** The flow this browser started, or null when it is missing, expired, or not ours. */
export function flowFromCookie(req: IncomingMessage, clientSecret: string, now = Date.now()): Flow | null {
  const value = req.headers.cookie ? parse(req.headers.cookie)[FLOW_COOKIE] : undefined;
  if (!value) return null;
  const sealed = Buffer.from(value, 'base64url');
  if (sealed.length < 12 + 16 + 2) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyFor(clientSecret), sealed.subarray(0, 12));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const text = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    const flow = Flow.safeParse(JSON.parse(text.toString('utf8')));
    return flow.success && flow.data.expiresAt > now ? flow.data : null;
  } catch {
    return null;
  }
}

/**
 * A dashboard path to come back to: only a path of this origin (no scheme, no host, no `//`,
 * no backslash, nothing of the API), else `/`. The sign-in is never an open redirect.
 */
export function safeReturnTo(value: unknown): string {
  if (typeof value !== 'string' || value.length > 512 || !value.startsWith('/')) return '/';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (value.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(value)) return '/';
  const base = 'https://broker.invalid';
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return '/';
  }
  if (url.origin !== base || /^\/(api|metrics|healthz)(\/|$)/.test(url.pathname)) return '/';
  return `${url.pathname}${url.search}`;
}
