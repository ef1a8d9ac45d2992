import { DnsLabel, PlainText } from '@trellis/proto';

/** OpenID Connect sign-in for the dashboard, as the broker is configured with it. */
export interface OidcOptions {
  /** The provider's issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The account users who sign in this way belong to (matched) or join (created); default `default`. */
  account?: string;
  /** The role of users it creates (users it matches keep theirs); default `member`. */
  role?: string;
  /** The name on the dashboard's "Sign in with …" button; default the issuer's host name. */
  name?: string;
}

export interface CheckedOidcOptions {
  issuer: string;
  clientId: string;
  clientSecret: string;
  account: string;
  role: 'member' | 'admin';
  name: string;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** The options with their defaults, or an error that says which one is wrong and why. */
export function checkOidcOptions(o: OidcOptions): CheckedOidcOptions {
  let url: URL;
  try {
    url = new URL(o.issuer);
  } catch {
    throw new Error(`--oidc-issuer must be a URL, got "${o.issuer}"`);
  }
  // Plain http only to this machine (a provider run beside the broker, or a test's).
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new Error(`--oidc-issuer must be an https:// URL, got "${o.issuer}"`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new Error('--oidc-issuer must be the bare issuer URL, without query, fragment or credentials');
  }
  if (!PlainText(255).min(1).safeParse(o.clientId).success) {
    throw new Error('--oidc-client-id must be 1-255 printable characters');
  }
  if (!o.clientSecret || /[\r\n]/.test(o.clientSecret.trim())) {
    throw new Error(
      'the OpenID Connect client secret is missing (--oidc-client-secret-file or TRELLIS_OIDC_CLIENT_SECRET)',
    );
  }
  const account = o.account ?? 'default';
  if (!DnsLabel.safeParse(account).success) {
    throw new Error(`--oidc-account must be an account name (a DNS label), got "${account}"`);
  }
  const role = o.role ?? 'member';
  // Not owner: an account has one owner, and a sign-in must not make more.
  if (role !== 'member' && role !== 'admin') {
    throw new Error(`--oidc-role must be member or admin, got "${role}"`);
  }
  const name = o.name ?? url.hostname;
  if (!PlainText(64).min(1).safeParse(name).success) {
    throw new Error('--oidc-name must be 1-64 printable characters');
  }
  return {
    issuer: o.issuer,
    clientId: o.clientId,
    clientSecret: o.clientSecret.trim(),
    account,
    role,
    name,
  };
}
