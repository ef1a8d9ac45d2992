import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair, publicKeyFromPrivate } from '@trellis/crypto';
import type { Db } from '../db/database';
import { brokerIdentity } from '../db/schema';

export interface BrokerKey {
  privateKey: string;
  publicKey: string;
}

function readKeyFile(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

function writeKeyFile(file: string, privateKey: string): void {
  writeFileSync(file, `${privateKey}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * The broker's static X25519 key. The database holds the one key all instances share; the data
 * directory keeps a 0600 copy in `broker.key`. The first instance to start stores its key (from
 * the file, or a new one); later instances adopt it. A key file that disagrees with the database
 * is refused rather than silently replaced, because devices pin the broker's public key.
 */
export async function loadOrCreateBrokerKey(db: Db, file: string): Promise<BrokerKey> {
  const fromFile = readKeyFile(file);
  await db
    .insert(brokerIdentity)
    .values({ id: 1, privateKey: fromFile ?? generateKeyPair().privateKey })
    .onConflictDoNothing();
  const [row] = await db.select().from(brokerIdentity);
  const privateKey = row!.privateKey;
  if (fromFile && fromFile !== privateKey) {
    throw new Error(
      `${file} holds a different broker key than the database; remove the file to adopt the database's key`,
    );
  }
  if (!fromFile) writeKeyFile(file, privateKey);
  return { privateKey, publicKey: publicKeyFromPrivate(privateKey) };
}
