import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/**
 * Sends each WebSocket upgrade on the HTTPS server to the handler of its path (the device and the
 * relay control channels); any other path is answered 404. Returns the function that detaches it.
 */
export function routeUpgrades(server: Server, routes: Record<string, UpgradeHandler>): () => void {
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const path = (req.url ?? '').split('?', 1)[0]!;
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (handler) return handler(req, socket, head);
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  };
  server.on('upgrade', onUpgrade);
  return () => server.off('upgrade', onUpgrade);
}
