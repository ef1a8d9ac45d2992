import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatEndpoint } from '@trellis/proto';
import { EndpointReflector } from '@trellis/reflector';
import type { Logger } from 'pino';

/** The reflector's X25519 key, kept in the state directory so agents keep the same peer. */
function loadOrCreateKey(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'reflector.key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const key = randomBytes(32);
  // Clamped as `wg genkey` does, so it reads back from WireGuard tools unchanged.
  key[0]! &= 248;
  key[31]! = (key[31]! & 127) | 64;
  const text = key.toString('base64');
  writeFileSync(file, `${text}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return text;
}

/**
 * The relay as a second endpoint reflector (ARCHITECTURE "Endpoint discovery through WireGuard
 * itself"): comparing what it and the broker's reflector see classifies a device's NAT mapping when
 * the broker has only one address. It cannot know which keys are enrolled, so it answers any valid
 * initiation (bounded by the reflector's per-source and global handshake budgets) and reports every
 * observation; the broker keeps those of enrolled keys only.
 */
export async function startRelayReflector(opts: {
  stateDir: string;
  host: string;
  port: number;
  publicAddress: string;
  log: Logger;
  onObserved(publicKey: string, endpoint: string): void;
}): Promise<{ info: { publicKey: string; endpoint: string }; close(): Promise<void> }> {
  const reflector = new EndpointReflector({
    privateKey: loadOrCreateKey(opts.stateDir),
    host: opts.host,
    port: opts.port,
    isEnrolled: () => true,
  });
  const bound = await reflector.start();
  reflector.on('observed', (o) => opts.onObserved(o.publicKey, o.endpoint));
  const info = { publicKey: reflector.publicKey, endpoint: formatEndpoint(opts.publicAddress, bound.port) };
  opts.log.info(info, 'reflector listening');
  return { info, close: () => reflector.close() };
}
