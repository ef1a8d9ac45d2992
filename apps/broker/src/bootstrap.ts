import type { Services } from './services/services';

export interface BootstrapCredentials {
  account: string;
  ownerEmail: string;
  ownerPassword: string;
  setupKey: string;
  setupKeyExpiresAt: string | null;
}

export const BOOTSTRAP_ACCOUNT = 'default';
export const BOOTSTRAP_OWNER = 'admin@trellis.local';

/** On an empty database: account `default`, its owner with a random password, a reusable 24 h key. */
export async function bootstrapIfEmpty(services: Services): Promise<BootstrapCredentials | undefined> {
  if ((await services.accounts.count()) > 0) return undefined;
  const created = await services.accounts.create(BOOTSTRAP_ACCOUNT, BOOTSTRAP_OWNER);
  const key = await services.setupKeys.create(created.account.id, {
    name: 'bootstrap',
    reusable: true,
    expiresInSeconds: 24 * 3600,
  });
  return {
    account: created.account.name,
    ownerEmail: created.owner.email,
    ownerPassword: created.generatedPassword!,
    setupKey: key.key,
    setupKeyExpiresAt: key.setupKey.expiresAt,
  };
}
