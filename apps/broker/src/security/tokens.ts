import { createHash, randomBytes } from 'node:crypto';
import { RELAY_TOKEN_PREFIX } from '@trellis/proto';

/** Secrets (session tokens, setup keys, relay tokens) are stored only as this hash. */
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

/** `trl_` + 43 base64url characters: the proto's RelayToken format. */
export function newRelayToken(): string {
  return `${RELAY_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** Enough of a relay token to recognise it in a list (the prefix and 8 characters). */
export function relayTokenPrefix(token: string): string {
  return token.slice(0, RELAY_TOKEN_PREFIX.length + 8);
}
