import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { formatEndpoint } from '@trellis/proto';
import { EndpointReflector, loadOrCreateReflectorKey } from '@trellis/reflector';
import type { Logger } from 'pino';

/** Kept in the state directory, so agents keep the same reflector peer across restarts. */
function loadOrCreateStateKey(stateDir: string): string {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return loadOrCreateReflectorKey(join(stateDir, 'reflector.key'));
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
    privateKey: loadOrCreateStateKey(opts.stateDir),
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
