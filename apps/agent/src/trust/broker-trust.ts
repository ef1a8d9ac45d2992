import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ClientRequestArgs } from 'node:http';
import { type AgentOptions, Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { BrokerTrust } from '@trellis/proto';
import { canonicalFingerprint, pinnedTlsConnect } from '@trellis/tls';

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
  if (trust.caFile && trust.fingerprint) throw new Error('give either a CA file or a fingerprint, not both');
  if (trust.caFile) readFileSync(trust.caFile); // fail early with the file's error
  if (trust.fingerprint) normalizeFingerprint(trust.fingerprint);
}

/**
 * An HTTPS agent (used for enrollment and the WebSocket alike) that trusts the broker one of three ways:
 * - CA file: ordinary verification against that CA (chain and host name);
 * - fingerprint: the leaf certificate's SHA-256 must equal the pin. The socket is handed to the
 *   request only after the check, so not one request byte reaches an impostor;
 * - neither: the system's CAs.
 */
export function createBrokerAgent(trust: BrokerTrust): HttpsAgent {
  validateTrust(trust);
  if (trust.fingerprint) return createPinnedAgent(trust.fingerprint);
  const opts: AgentOptions = { keepAlive: false };
  if (trust.caFile) opts.ca = readFileSync(trust.caFile);
  return new HttpsAgent(opts);
}

/**
 * An HTTPS agent that accepts exactly the certificate with this SHA-256 fingerprint (checked before
 * the request is written). Used for a pinned broker and for relays (`RelayTcpInfo.fingerprint`).
 */
export function createPinnedAgent(fingerprint: string, server = 'broker'): HttpsAgent {
  return new PinnedAgent(normalizeFingerprint(fingerprint), server);
}

type SocketCallback = (err: Error | null, socket: Duplex) => void;

/** The shared pinned connect (@trellis/tls), failing with this package's error naming the server. */
class PinnedAgent extends HttpsAgent {
  private readonly connectPinned: ReturnType<typeof pinnedTlsConnect>;

  constructor(pin: string, server: string) {
    super({ keepAlive: false });
    this.connectPinned = pinnedTlsConnect(pin, (e, a) => new TlsPinMismatchError(e, a, server));
  }

  override createConnection(options: ClientRequestArgs, callback?: SocketCallback): Duplex | undefined {
    return this.connectPinned(options as ConnectionOptions, (err, socket) => callback?.(err, socket));
  }
}
