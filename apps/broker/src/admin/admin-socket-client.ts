import { connect } from 'node:net';
import { type AdminRequest, AdminResponse } from '@trellis/proto';

/** True when a broker answers on the socket. */
export function probeAdminSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Sends one request and waits for its one-line answer. */
export function adminRequest(path: string, req: AdminRequest, timeoutMs = 30_000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buffer = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer from the broker on ${path}`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.once('connect', () => s.write(`${JSON.stringify(req)}\n`));
    s.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.end();
      try {
        resolve(AdminResponse.parse(JSON.parse(buffer.slice(0, nl))));
      } catch {
        reject(new Error('malformed answer from the broker admin socket'));
      }
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
