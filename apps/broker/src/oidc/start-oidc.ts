import type { Logger } from 'pino';
import type { Services } from '../services/services';
import type { CheckedOidcOptions } from './oidc-options';
import { OidcSignIn } from './oidc-sign-in';

/**
 * OIDC sign-in as the broker starts it: the account users join must exist (a clear error at start
 * rather than failed sign-ins later); the provider need not be up yet (it is looked up in the background).
 */
export async function startOidc(
  options: CheckedOidcOptions,
  services: Services,
  logger: Logger,
): Promise<OidcSignIn> {
  try {
    await services.accounts.byName(options.account);
  } catch {
    throw new Error(
      `--oidc-account "${options.account}" does not exist (create it: trellis-broker accounts create ${options.account} --owner-email EMAIL)`,
    );
  }
  const oidc = new OidcSignIn(options, services.db, logger);
  oidc.warmUp();
  return oidc;
}
