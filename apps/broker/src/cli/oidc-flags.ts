import { readFileSync } from 'node:fs';
import type { OidcOptions } from '../oidc/oidc-options';

/** The `serve` flags of OpenID Connect sign-in. */
export interface OidcFlags {
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecretFile?: string;
  oidcAccount?: string;
  oidcRole?: string;
  oidcName?: string;
}

/** Where the client secret may come from besides a file: never a flag, which `ps` would show. */
export const OIDC_SECRET_ENV = 'TRELLIS_OIDC_CLIENT_SECRET';

/**
 * The OIDC options the flags give, or undefined without `--oidc-issuer`. The client secret is
 * read from `--oidc-client-secret-file`, else from the environment.
 */
export function oidcFromFlags(
  flags: OidcFlags,
  env: NodeJS.ProcessEnv = process.env,
): OidcOptions | undefined {
  if (!flags.oidcIssuer) {
    if (flags.oidcClientId || flags.oidcClientSecretFile) {
      throw new Error('--oidc-client-id and --oidc-client-secret-file need --oidc-issuer');
    }
    return undefined;
  }
  if (!flags.oidcClientId) throw new Error('--oidc-issuer needs --oidc-client-id');
  let clientSecret = env[OIDC_SECRET_ENV] ?? '';
  if (flags.oidcClientSecretFile) {
    try {
      clientSecret = readFileSync(flags.oidcClientSecretFile, 'utf8').trim();
    } catch (err) {
      throw new Error(
        `cannot read --oidc-client-secret-file ${flags.oidcClientSecretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (!clientSecret) {
    throw new Error(
      `--oidc-issuer needs the client secret: --oidc-client-secret-file FILE or ${OIDC_SECRET_ENV}`,
    );
  }
  return {
    issuer: flags.oidcIssuer,
    clientId: flags.oidcClientId,
    clientSecret,
    ...(flags.oidcAccount ? { account: flags.oidcAccount } : {}),
    ...(flags.oidcRole ? { role: flags.oidcRole } : {}),
    ...(flags.oidcName ? { name: flags.oidcName } : {}),
  };
}
