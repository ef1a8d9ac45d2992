import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Services } from './services/services';

export interface BootstrapCredentials {
  /** Where they were written as well (0600, in the data directory). */
  file: string;
  account: string;
  ownerEmail: string;
  ownerPassword: string;
  setupKey: string;
  setupKeyExpiresAt: string | null;
}

export const BOOTSTRAP_ACCOUNT = 'default';
export const BOOTSTRAP_OWNER = 'admin@trellis.local';
/** The first start's credentials, in the data directory (mode 0600). */
export const CREDENTIALS_FILE = 'first-start-credentials.txt';

/** On an empty database: account `default`, its owner with a random password, a reusable 24 h key. */
export async function bootstrapIfEmpty(
  services: Services,
  dataDir: string,
): Promise<BootstrapCredentials | undefined> {
  if ((await services.accounts.count()) > 0) return undefined;
  const created = await services.accounts.create(BOOTSTRAP_ACCOUNT, BOOTSTRAP_OWNER);
  const key = await services.setupKeys.create(created.account.id, {
    name: 'bootstrap',
    reusable: true,
    expiresInSeconds: 24 * 3600,
  });
  const credentials = {
    file: join(dataDir, CREDENTIALS_FILE),
    account: created.account.name,
    ownerEmail: created.owner.email,
    ownerPassword: created.generatedPassword!,
    setupKey: key.key,
    setupKeyExpiresAt: key.setupKey.expiresAt,
  };
  // Only the terminal and this file ever see them: never the log stream.
  // A file left from an earlier database (or a link put there) is replaced, never written through.
  rmSync(credentials.file, { force: true });
  writeFileSync(
    credentials.file,
    [
      `account: ${credentials.account}`,
      `owner email: ${credentials.ownerEmail}`,
      `owner password: ${credentials.ownerPassword}`,
      `setup key: ${credentials.setupKey} (reusable, expires ${credentials.setupKeyExpiresAt})`,
      '',
    ].join('\n'),
    { mode: 0o600, flag: 'wx' },
  );
  return credentials;
}
