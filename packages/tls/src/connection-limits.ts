import type { Server, Socket } from 'node:net';

/**
 * A TLS client that has not finished its handshake by then is dropped (Node's default is 120 s: a
 * raw TCP connection that never sends a ClientHello held a slot that long). Not shorter: the
 * server's handshakes wait their turn on one event loop, and with 5 s a reconnection storm of
 * 10,000 devices never settled (96,309 handshakes cut, 637 of 10,000 back after 646 s; bench netmap).
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

/**
 * How many connections one source address may hold at once by default. Generous on purpose: a
 * whole office or a carrier-grade NAT reaches a broker from one address; the cap is there so that
 * one client cannot hold thousands of idle connections.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 1_024;

export interface ConnectionLimitOptions {
  /** 0: no cap. */
  maxPerAddress: number;
  /** Called for each connection refused (the first of a burst is worth a log line; count them). */
  onRefused?: (address: string, open: number) => void;
}

/**
 * Caps the concurrent TCP connections per source address of a server (before TLS: a refused one
 * costs no handshake). Returns a function that stops counting new connections.
 */
export function limitConnectionsPerAddress(server: Server, opts: ConnectionLimitOptions): () => void {
  const open = new Map<string, number>();
  const onConnection = (socket: Socket) => {
    if (opts.maxPerAddress <= 0) return;
    const address = socket.remoteAddress ?? '?';
    const count = open.get(address) ?? 0;
    if (count >= opts.maxPerAddress) {
      opts.onRefused?.(address, count);
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  };
  server.on('connection', onConnection);
  return () => server.off('connection', onConnection);
}
