import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '@trellis/crypto';

/**
 * A reflector's static X25519 private key, kept 0600 in the data directory (like broker.key) so that
 * agents' WireGuard peer entries stay valid across restarts. Each reflector has its own key: a device
 * cannot have two WireGuard peers with one key.
 */
export function loadOrCreateReflectorKey(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const { privateKey } = generateKeyPair();
  writeFileSync(file, `${privateKey}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return privateKey;
}
