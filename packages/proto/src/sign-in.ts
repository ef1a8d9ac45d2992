import { z } from 'zod';
import { PlainText } from './common';

/** GET API_PATHS.signInOptions: the ways to sign in this broker offers (before anyone is signed in). */
export const SignInOptions = z.object({
  /** Email and password: always offered. */
  password: z.literal(true),
  /** OpenID Connect sign-in, with the name its button shows; null when not configured. */
  oidc: z.object({ name: PlainText(64).min(1) }).nullable(),
});
export type SignInOptions = z.infer<typeof SignInOptions>;

/**
 * Query parameter of GET API_PATHS.oidcStart: the dashboard page to come back to, a same-origin
 * path only (anything else is replaced by `/`, so the sign-in is never an open redirect).
 */
export const OIDC_RETURN_TO_PARAM = 'returnTo';

/** Query parameter with which a failed OpenID Connect sign-in comes back to the dashboard. */
export const SIGN_IN_ERROR_PARAM = 'signInError';

/** Why an OpenID Connect sign-in failed; the dashboard shows SIGN_IN_ERROR_MESSAGES of it. */
export const OidcSignInError = z.enum([
  'oidc_off',
  'oidc_unavailable',
  'oidc_state',
  'oidc_denied',
  'oidc_unverified',
  'oidc_other_account',
  'oidc_no_account',
  'oidc_failed',
]);
export type OidcSignInError = z.infer<typeof OidcSignInError>;

export const SIGN_IN_ERROR_MESSAGES: Readonly<Record<OidcSignInError, string>> = {
  oidc_off: 'Single sign-on is not configured on this broker.',
  oidc_unavailable: 'The sign-in provider cannot be reached right now. Try again in a moment.',
  oidc_state:
    'That sign-in could not be matched to this browser (it expired or was tampered with). Start again.',
  oidc_denied: 'The sign-in provider did not sign you in.',
  oidc_unverified: 'The sign-in provider has not verified your email address; verify it there and try again.',
  oidc_other_account: 'Your email address belongs to a user who cannot sign in here this way.',
  oidc_no_account: "The broker's single sign-on is set up for an account that does not exist.",
  oidc_failed: 'The sign-in provider gave an answer that could not be checked. Try again.',
};
