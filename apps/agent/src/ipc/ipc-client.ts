import { connect } from 'node:net';
import type { IpcRequest } from '@trellis/proto';

export class DaemonUnavailableError extends Error {}

/** The client's side of the server's ConnectionGate (Windows: pipe-auth-windows.ts). */
export interface ClientGate {
  /** The first line, sent on connect. */
  hello(): string;
  /** The server's answer to it: the line to send before the request; throws if the server is not genuine. */
  answer(line: string): string;
}

/** Sends one request to trellisd and returns its one-line JSON answer. */
export function ipcCall(
  socketPath: string,
  req: IpcRequest,
  timeoutMs = 60_000,
  gate: ClientGate | null = null,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = '';
    let pending = gate;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new DaemonUnavailableError(`trellisd did not answer within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(pending ? `${pending.hello()}\n` : `${JSON.stringify(req)}\n`));
    sock.on('data', (c: string) => {
      buf += c;
      let nl = buf.indexOf('\n');
      if (nl >= 0 && pending) {
        try {
          sock.write(`${pending.answer(buf.slice(0, nl))}\n${JSON.stringify(req)}\n`);
        } catch (err) {
          clearTimeout(timer);
          sock.destroy();
          reject(new DaemonUnavailableError((err as Error).message));
          return;
        }
        pending = null;
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
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
