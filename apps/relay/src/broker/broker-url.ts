import { readFileSync } from 'node:fs';
import { API_PATHS, type BrokerTrust, brokerTrustAnchors } from '@trellis/proto';
import { brokerTlsConnect } from '@trellis/tls';
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
 * ws client options that trust the broker by CA files or by certificate pins (any pin, or CA, on any
 * instance: they share the database and the static key); neither: the system's CAs. Verification is
 * never turned off, and a TCP connect that does not complete in CONNECT_TIMEOUT_MS fails, so a dead
 * instance costs little of a failover.
 */
export function brokerTlsOptions(trust: BrokerTrust): ClientOptions {
  const { caFiles, fingerprints } = brokerTrustAnchors(trust);
  if (caFiles.length > 0 && fingerprints.length > 0)
    throw new Error('give --ca-file or --fingerprint, not both');
  const ca = caFiles.map((file) => readFileSync(file));
  return { createConnection: brokerTlsConnect({ ca, fingerprints }) as never };
}
