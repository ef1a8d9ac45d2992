import { z } from 'zod';
import { PlainText } from './common';
import { UpRequest } from './ipc';

/**
 * The local web UI that trellisd serves on loopback for the tray app (and any browser of the local
 * user). Answers reuse the IPC shapes: StatusResponse, UpResponse, OkResponse, ErrorResponse.
 */
export const LOCAL_UI_PATHS = {
  /** POST LocalUiSessionRequest: the UI token for a session cookie and a CSRF token. */
  session: '/api/session',
  /** GET: StatusResponse. */
  status: '/api/status',
  /** POST LocalUiUpRequest: UpResponse (sign in, or connect again with the enrolled broker). */
  up: '/api/up',
  /** POST (empty JSON object): OkResponse. */
  down: '/api/down',
} as const;

/** Not 41641 (Tailscale's WireGuard port) nor 51820 (WireGuard's): 127.0.0.1:41820. */
export const DEFAULT_LOCAL_UI_PORT = 41820;
/** Every API call but the session exchange carries the session's CSRF token in this header. */
export const LOCAL_UI_CSRF_HEADER = 'x-trellis-csrf';
/** Where trellisd writes the UI token file by default (owner: the operator, mode 0600). */
export const DEFAULT_LOCAL_UI_TOKEN_FILE = '/run/trellis/ui-token';

/** 32 random bytes, base64url: the UI token and the CSRF token alike. */
export const LocalUiSecret = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a 43-character token');

/** The file the tray (or `trellis ui`) reads: where the UI is and the token that opens it. */
export const LocalUiTokenFile = z.strictObject({
  url: z.string().url(),
  token: LocalUiSecret,
});
export type LocalUiTokenFile = z.infer<typeof LocalUiTokenFile>;

export const LocalUiSessionRequest = z.strictObject({ token: z.string().max(256) });
export type LocalUiSessionRequest = z.infer<typeof LocalUiSessionRequest>;
export const LocalUiSessionResponse = z.object({ ok: z.literal(true), csrf: LocalUiSecret });
export type LocalUiSessionResponse = z.infer<typeof LocalUiSessionResponse>;

/**
 * `up` from the UI: a broker URL starts the sign-in (device flow); none connects again with the
 * enrolled broker. No setup key and no CA file (a path the root daemon would read) from here.
 */
export const LocalUiUpRequest = z.strictObject({
  broker: z.string().url().max(2048).optional(),
  /** The broker certificate's SHA-256, for a broker with a self-signed certificate. */
  fingerprint: UpRequest.shape.trust.unwrap().shape.fingerprint,
  name: PlainText(63).min(1).optional(),
});
export type LocalUiUpRequest = z.infer<typeof LocalUiUpRequest>;

export const LocalUiDownRequest = z.strictObject({});
