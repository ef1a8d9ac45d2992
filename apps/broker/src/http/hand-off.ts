import type { Server, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/**
 * Hands a connection accepted by a listener in front of `target` (which does not listen itself)
 * to it. TLS takes the socket's handle over and must not be resumed; HTTP reads the socket's own
 * stream, which must flow (it was paused, or never started reading).
 */
export function handOffTo(target: Server): (socket: Socket) => void {
  const isTls = target instanceof TlsServer;
  return (socket) => {
    target.emit('connection', socket);
    if (!isTls && !socket.destroyed) socket.resume();
  };
}
