import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ClientRequestArgs } from 'node:http';
import { type AgentOptions, Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { BrokerTrust } from '@trellis/proto';

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
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/:/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) throw new Error(`not a SHA-256 fingerprint: ${fp}`);
  return hex.match(/../g)!.join(':');
}

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

class PinnedAgent extends HttpsAgent {
  constructor(
    private readonly pin: string,
    private readonly server: string,
  ) {
    super({ keepAlive: false });
  }

  override createConnection(options: ClientRequestArgs, callback?: SocketCallback): Duplex | undefined {
    // The pin replaces chain verification, which a self-signed broker certificate cannot pass;
    // the connection is unusable until the pin has been checked below.
    const socket: TLSSocket = tlsConnect({ ...(options as ConnectionOptions), rejectUnauthorized: false });
    const onError = (err: Error) => callback?.(err, socket);
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      const cert = socket.getPeerCertificate();
      const actual = cert?.raw ? certificateFingerprint(cert.raw) : '(no certificate)';
      if (actual !== this.pin) {
        const err = new TlsPinMismatchError(this.pin, actual, this.server);
        socket.destroy();
        callback?.(err, socket);
        return;
      }
      callback?.(null, socket);
    });
    return undefined;
  }
}
