import { connect } from 'node:net';
import type { IpcRequest } from '@trellis/proto';

export class DaemonUnavailableError extends Error {}

/** Sends one request to trellisd and returns its one-line JSON answer. */
export function ipcCall(socketPath: string, req: IpcRequest, timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new DaemonUnavailableError(`trellisd did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c: string) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch {
        reject(new Error('trellisd sent an answer that is not JSON'));
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(explain(err, socketPath));
    });
  });
}

function explain(err: NodeJS.ErrnoException, path: string): Error {
  switch (err.code) {
    case 'ENOENT':
    case 'ECONNREFUSED':
      return new DaemonUnavailableError(`trellisd is not running (no daemon listening on ${path})`);
    case 'EACCES':
    case 'EPERM':
      return new DaemonUnavailableError(
        `permission denied on ${path}: run trellis as root (the socket is 0600)`,
      );
    default:
      return new DaemonUnavailableError(`cannot reach trellisd at ${path}: ${err.message}`);
  }
}
