import type { Server as HttpsServer } from 'node:https';
import { DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, limitConnectionsPerAddress } from '@trellis/tls';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';

/** At most one "refused" log line per this long: a client hammering the cap must not fill the log. */
const REFUSED_LOG_INTERVAL_MS = 60_000;

/**
 * Limits of the broker's HTTPS server against clients that hold connections without using them: a
 * request that stalls is cut off (instead of after Node's minutes), and one source address holds
 * at most `maxPerAddress` connections (TLS handshakes time out by the server's handshakeTimeout).
 * Returns a function that removes the cap.
 */
export function guardServer(
  server: HttpsServer,
  maxPerAddress: number | undefined,
  metrics: BrokerMetrics,
  logger: Logger,
): () => void {
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  let refusedLogged = Number.NEGATIVE_INFINITY;
  return limitConnectionsPerAddress(server, {
    maxPerAddress: maxPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
    onRefused: (address, open) => {
      metrics.error('connection_cap');
      if (Date.now() - refusedLogged < REFUSED_LOG_INTERVAL_MS) return;
      refusedLogged = Date.now();
      logger.warn({ address, open }, 'connection refused: too many from one address');
    },
  });
}
