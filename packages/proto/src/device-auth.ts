import { z } from 'zod';
import { EnrollRequest } from './api';
import { WgKey } from './common';

/**
 * Sign in once: the OAuth 2.0 device authorization grant (RFC 8628) as Trellis speaks it, in JSON
 * and camelCase like the rest of the API. A device that has no setup key asks for a code pair, the
 * user approves the short user code in the dashboard after signing in, and the device's poll then
 * gets its enrollment (the grant's "token").
 */

/** RFC 8628 §6.1: 20 consonants, no vowels (no words), no look-alikes; 8 of them ≈ 34.5 bits. */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;

/** Upper-cases and drops everything but the alphabet, so `bcdf-ghjk` and `BCDF GHJK` are one code. */
export function normaliseUserCode(input: string): string {
  return input.toUpperCase().replace(new RegExp(`[^${USER_CODE_ALPHABET}]`, 'g'), '');
}

/** `BCDFGHJK` as the user reads it: `BCDF-GHJK`. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, USER_CODE_LENGTH / 2)}-${code.slice(USER_CODE_LENGTH / 2)}`;
}

/** A user code as typed (any case, any separators), normalised; fails unless 8 letters of the alphabet remain. */
export const UserCode = z
  .string()
  .max(64)
  .transform(normaliseUserCode)
  .refine((c) => c.length === USER_CODE_LENGTH, {
    message: `a code is ${USER_CODE_LENGTH} letters, as XXXX-XXXX`,
  });

/** The device code is the device's secret: never in a URL, only in request bodies. */
export const DeviceCode = z.string().regex(/^tdev_[A-Za-z0-9_-]{43}$/, 'malformed device code');

/** What the device says about itself; the enrollment fields without a setup key. */
export const DeviceAuthRequest = EnrollRequest.omit({ setupKey: true });
export type DeviceAuthRequest = z.input<typeof DeviceAuthRequest>;

/** Text the enrollment proof (@trellis/crypto enrollProof) is made over in place of a setup key. */
export const DEVICE_AUTH_PROOF_LABEL = 'device-authorization';

export const DeviceAuthResponse = z.object({
  deviceCode: DeviceCode,
  /** As the user reads and types it: XXXX-XXXX. */
  userCode: z.string(),
  /** Where the user goes to approve: the dashboard's device page. */
  verificationUri: z.string().url(),
  /** The same with the code filled in, in the fragment (never sent to a server, never logged). */
  verificationUriComplete: z.string().url(),
  /** Seconds until the codes expire. */
  expiresIn: z.number().int().positive(),
  /** Seconds the device waits between polls (RFC 8628 §3.5: 5 more after each `slow_down`). */
  interval: z.number().int().positive(),
});
export type DeviceAuthResponse = z.infer<typeof DeviceAuthResponse>;

export const DeviceTokenRequest = z.strictObject({ deviceCode: DeviceCode });
export type DeviceTokenRequest = z.infer<typeof DeviceTokenRequest>;

/**
 * The `code` of a poll that got no enrollment (HTTP 400; RFC 8628 §3.5 calls it `error`): keep polling
 * (`authorization_pending`), poll slower (`slow_down`), or stop (`access_denied`: the user said
 * no; `expired_token`: the codes expired, or were used already).
 */
export const DeviceTokenError = z.enum([
  'authorization_pending',
  'slow_down',
  'access_denied',
  'expired_token',
]);
export type DeviceTokenError = z.infer<typeof DeviceTokenError>;

/** A pending request as the approving user sees it, looked up by its user code. */
export const DeviceAuthInfo = z.object({
  userCode: z.string(),
  name: z.string().nullable(),
  hostname: z.string(),
  os: z.string(),
  publicKey: WgKey,
  /** The address the request came from, as the broker saw it. */
  requestedFrom: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type DeviceAuthInfo = z.infer<typeof DeviceAuthInfo>;

export const DeviceAuthDecision = z.strictObject({ userCode: UserCode, approve: z.boolean() });
export type DeviceAuthDecision = z.input<typeof DeviceAuthDecision>;

/** What a decision did: approved devices are enrolled (in the approver's account, as theirs). */
export const DeviceAuthDecisionResponse = z.object({
  approved: z.boolean(),
  deviceId: z.string().nullable(),
  name: z.string().nullable(),
  /** Approved by a member where the account requires an admin's approval too: not in the mesh yet. */
  awaitingAdmin: z.boolean(),
});
export type DeviceAuthDecisionResponse = z.infer<typeof DeviceAuthDecisionResponse>;
