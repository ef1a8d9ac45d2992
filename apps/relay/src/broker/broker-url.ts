import { readFileSync } from 'node:fs';
import { API_PATHS, type BrokerTrust } from '@trellis/proto';
import { pinnedTlsConnect } from '@trellis/tls';
import type { ClientOptions } from 'ws';

/** The control WebSocket URL from the broker's base URL (`https://host:port`). */
export function relayControlUrl(broker: string): string {
  const url = new URL(broker);
  if (url.protocol !== 'https:' && url.protocol !== 'wss:') {
    throw new Error(`--broker must be an https:// URL, got "${broker}"`);
  }
  url.protocol = 'wss:';
  url.pathname = API_PATHS.relayControl;
  url.search = '';
  url.hash = '';
  return url.toString();
}

/**
 * ws client options that trust the broker by CA file or by certificate pin; neither: the system's
 * CAs. Verification is never turned off.
 */
export function brokerTlsOptions(trust: BrokerTrust): ClientOptions {
  if (trust.caFile && trust.fingerprint) throw new Error('give --ca-file or --fingerprint, not both');
  if (trust.fingerprint) {
    return { createConnection: pinnedTlsConnect(trust.fingerprint) as never };
  }
  if (trust.caFile) return { ca: readFileSync(trust.caFile) };
  return {};
}
