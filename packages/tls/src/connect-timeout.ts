import type { Socket } from 'node:net';

/**
 * How long a TCP connection to a broker may take. A dead host never answers the SYN and the kernel
 * would wait minutes; a failover to another instance must fit in seconds.
 */
export const CONNECT_TIMEOUT_MS = 1_500;

export class ConnectTimeoutError extends Error {
  /** As the kernel's own timeout reports it, so callers describe it as "unreachable". */
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`TCP connection not established within ${ms} ms`);
    this.name = 'ConnectTimeoutError';
  }
}

/** Destroys the socket unless its TCP connection (name lookup included) is up within `ms`. */
export function limitConnectTime(socket: Socket, ms: number): void {
  if (!socket.connecting) return;
  const timer = setTimeout(() => socket.destroy(new ConnectTimeoutError(ms)), ms);
  const clear = () => clearTimeout(timer);
  socket.once('connect', clear);
  socket.once('close', clear);
}
