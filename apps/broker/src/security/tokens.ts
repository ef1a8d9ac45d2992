import { createHash, randomBytes } from 'node:crypto';

/** Secrets (session tokens, setup keys) are stored only as this hash. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function newSessionToken(): string {
  return `tsess_${randomBytes(32).toString('base64url')}`;
}

export function newSetupKey(): string {
  return `tskey_${randomBytes(24).toString('base64url')}`;
}

/** Enough of a setup key to recognise it in a list. */
export function setupKeyPrefix(key: string): string {
  return key.slice(0, 12);
}
