import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '@trellis/noise';

/**
 * A reflector's static X25519 private key (base64), kept 0600 in `file` so that agents' WireGuard
 * peer entries stay valid across restarts. Each reflector has its own key: a device cannot have two
 * WireGuard peers with one key.
 */
export function loadOrCreateReflectorKey(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const privateKey = Buffer.from(generateKeyPair().privateKey).toString('base64');
  writeFileSync(file, `${privateKey}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return privateKey;
}
