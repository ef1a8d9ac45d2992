import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { isAbsolute, join } from 'node:path';
import { type BrokerTrust, brokerTrustAnchors } from '@trellis/proto';
import {
  brokerTlsConnect,
  CONNECT_TIMEOUT_MS,
  canonicalFingerprint,
  pinnedTlsConnect,
  TlsConnectAgent,
} from '@trellis/tls';

export class TlsPinMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    /** Who presented the certificate: `broker`, `relay`. */
    server = 'broker',
  ) {
    super(
      `TLS pin mismatch: the ${server}'s certificate has SHA-256 fingerprint ${actual}, ` +
        `but this device pins ${expected}. Refusing to talk to it.`,
    );
    this.name = 'TlsPinMismatchError';
  }
}

/** `AB:CD:…` upper-case colon form, from hex with or without colons. */
export const normalizeFingerprint = canonicalFingerprint;

export function certificateFingerprint(der: Buffer): string {
  return normalizeFingerprint(createHash('sha256').update(der).digest('hex'));
}

export function validateTrust(trust: BrokerTrust): void {
  const { caFiles, fingerprints } = brokerTrustAnchors(trust);
  if (caFiles.length > 0 && fingerprints.length > 0)
    throw new Error('give either CA files or fingerprints, not both');
  for (const file of caFiles) readFileSync(file); // fail early with the file's error
  for (const fingerprint of fingerprints) normalizeFingerprint(fingerprint);
}

/**
 * The trust of `trellis up`'s flags (null: none given): one CA file or pin in the singular fields,
 * as before; several (instances with their own certificates) in the plural ones. Checked here.
 */
export function trustFromFlags(caFiles: string[], fingerprints: string[], cwd: string): BrokerTrust | null {
  if (caFiles.length === 0 && fingerprints.length === 0) return null;
  const files = caFiles.map((f) => (isAbsolute(f) ? f : join(cwd, f)));
  const trust: BrokerTrust = {};
  if (files.length === 1) trust.caFile = files[0];
  else if (files.length > 1) trust.caFiles = files;
  if (fingerprints.length === 1) trust.fingerprint = fingerprints[0];
  else if (fingerprints.length > 1) trust.fingerprints = fingerprints;
  validateTrust(trust);
  return trust;
}

/**
 * An HTTPS agent (used for enrollment and the WebSocket alike) that trusts the broker one of three ways:
 * - CA files: ordinary verification against them (chain and host name);
 * - fingerprints: the leaf certificate's SHA-256 must be one of the pins. The socket is handed to
 *   the request only after the check, so not one request byte reaches an impostor;
 * - neither: the system's CAs.
 * Several instances of one broker may each have their own certificate: every pin (or CA) is accepted
 * on every broker URL. That is no weaker than a pin per URL: the instances share the database and
 * the static key, so holding any pinned certificate's key already means holding an instance; and
 * the control channel still checks the static key pinned at enrollment, whichever instance answers.
 * The TCP connect is bounded (CONNECT_TIMEOUT_MS) so a dead instance costs little of a failover.
 */
export function createBrokerAgent(trust: BrokerTrust, connectTimeoutMs = CONNECT_TIMEOUT_MS): HttpsAgent {
  validateTrust(trust);
  const { caFiles, fingerprints } = brokerTrustAnchors(trust);
  const connect = brokerTlsConnect(
    { ca: caFiles.map((file) => readFileSync(file)), fingerprints },
    { connectTimeoutMs, mismatch: (e, a) => new TlsPinMismatchError(e, a, 'broker') },
  );
  return new TlsConnectAgent(connect);
}

/**
 * An HTTPS agent that accepts exactly the certificate with this SHA-256 fingerprint (checked before
 * the request is written). Used for relays (`RelayTcpInfo.fingerprint`).
 */
export function createPinnedAgent(fingerprint: string, server = 'broker'): HttpsAgent {
  const pin = normalizeFingerprint(fingerprint);
  return new TlsConnectAgent(pinnedTlsConnect(pin, (e, a) => new TlsPinMismatchError(e, a, server)));
}
