import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { HttpsOptions } from '@nestjs/common/interfaces/external/https-options.interface';
import { defaultSans, fingerprintOf, loadOrCreateTls, TLS_HANDSHAKE_TIMEOUT_MS } from '@trellis/tls';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import { handOffTo } from './hand-off';
import { proxyProtocolListener } from './proxy-protocol';

/** At most one "rejected" log line per this long: a scanner must not fill the log. */
const REJECTED_LOG_INTERVAL_MS = 60_000;

export interface ListenOptions {
  host: string;
  port: number;
  /** Every connection starts with a PROXY v2 header (from HAProxy's `send-proxy-v2`). */
  proxyProtocol?: boolean;
  proxyHeaderTimeoutMs?: number;
}

/** Plain HTTP is only for a proxy that sends PROXY headers and owns the public https URL. */
export function checkListenerOptions(o: {
  plainHttp?: boolean;
  proxyProtocol?: boolean;
  publicUrl?: string;
}): void {
  if (!o.plainHttp) return;
  if (!o.proxyProtocol)
    throw new Error(
      '--plain-http needs --proxy-protocol: a broker without TLS must only be reached through its proxy',
    );
  if (!o.publicUrl?.startsWith('https://'))
    throw new Error("--plain-http needs --public-url: the proxy's https:// URL, the one devices use");
}

/**
 * The listener's certificate (none with plainHttp), the fingerprint devices and relays pin (with
 * plainHttp the proxy's, from tlsCertFile) and the options https.createServer gets as they are
 * (Nest's type lacks handshakeTimeout).
 */
export async function listenerTls(
  dataDir: string,
  o: {
    plainHttp?: boolean;
    tlsCertFile?: string;
    tlsKeyFile?: string;
    tlsSans?: string[];
    publicUrl?: string;
    tlsHandshakeTimeoutMs?: number;
  },
) {
  if (o.plainHttp) {
    const publicFingerprint = o.tlsCertFile ? fingerprintOf(readFileSync(o.tlsCertFile, 'utf8')) : undefined;
    return { tls: null, publicFingerprint, httpsOptions: undefined };
  }
  const tls = await loadOrCreateTls({
    dataDir,
    certFile: o.tlsCertFile,
    keyFile: o.tlsKeyFile,
    sans: defaultSans(o.tlsSans ?? [], o.publicUrl),
  });
  const httpsOptions: HttpsOptions & { handshakeTimeout: number } = {
    cert: tls.cert,
    key: tls.key,
    handshakeTimeout: o.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
  };
  return { tls, publicFingerprint: tls.fingerprint, httpsOptions };
}

/** Decides when an accepted, unread connection goes on to the server (AdmissionGate.offer). */
export type Offer = (socket: Socket, admit: (socket: Socket) => void) => void;

/**
 * A listener for the broker's HTTPS server (not listening itself) that reads nothing of a new
 * connection and offers it, so that one beyond the admission limit can wait unread.
 */
export function heldListener(target: Server, offer: Offer): Server {
  const admit = handOffTo(target);
  const front = createServer({ pauseOnConnect: true }, (socket) => offer(socket, admit));
  // http.Server starts the sweep behind headersTimeout/requestTimeout when it starts listening.
  front.once('listening', () => target.emit('listening'));
  return front;
}

/**
 * Starts accepting connections for the broker's HTTP(S) server through a listener that offers each
 * to the admission gate: unread (TLS), or once its PROXY protocol header is read. Returns the bound
 * port, a function that stops accepting (open connections are the server's to close), and a
 * promise settled once it stopped and every connection it accepted has ended.
 */
export async function listenBroker(
  server: Server,
  offer: Offer,
  opts: ListenOptions,
  metrics: BrokerMetrics,
  logger: Logger,
): Promise<{ port: number; stop: () => void; closed: Promise<void> }> {
  let loggedAt = Number.NEGATIVE_INFINITY;
  const front = opts.proxyProtocol
    ? proxyProtocolListener(server, {
        offer,
        timeoutMs: opts.proxyHeaderTimeoutMs,
        onRejected: (reason, address) => {
          metrics.error('proxy_header');
          if (Date.now() - loggedAt < REJECTED_LOG_INTERVAL_MS) return;
          loggedAt = Date.now();
          logger.warn({ reason, address }, 'connection closed: no valid PROXY protocol header');
        },
      })
    : heldListener(server, offer);
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(opts.port, opts.host, () => {
      front.off('error', reject);
      resolve();
    });
  });
  // Accepting can fail later (out of file descriptors): said and counted, never a crash.
  let acceptLoggedAt = Number.NEGATIVE_INFINITY;
  front.on('error', (err: NodeJS.ErrnoException) => {
    metrics.error('accept');
    if (Date.now() - acceptLoggedAt < REJECTED_LOG_INTERVAL_MS) return;
    acceptLoggedAt = Date.now();
    logger.error({ err: err.message, code: err.code }, 'accepting a connection failed');
  });
  const port = (front.address() as { port: number }).port;
  const closed = new Promise<void>((resolve) => front.once('close', () => resolve()));
  // The server itself is closed by the app; the front stops accepting, and is closed once the
  // connections it accepted have all ended.
  return { port, stop: () => void front.close(), closed };
}
