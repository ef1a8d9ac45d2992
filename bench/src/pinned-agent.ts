import { X509Certificate } from 'node:crypto';
import type { Agent } from 'node:https';
import { pinnedTlsConnect, TlsConnectAgent } from '@trellis/tls';

/**
 * The HTTPS agent simulated devices connect with: the broker's certificate pinned by fingerprint,
 * the agent's own code path (`trellis up --fingerprint`, as the quick start does), no session reuse.
 */
export function pinnedBrokerAgent(certPem: string): Agent {
  return new TlsConnectAgent(pinnedTlsConnect(new X509Certificate(certPem).fingerprint256));
}
