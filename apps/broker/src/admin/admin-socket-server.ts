import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { AdminRequest, type AdminResponse, MAX_ADMIN_LINE_BYTES } from '@trellis/proto';
import type { Logger } from 'pino';
import { DomainError } from '../domain/errors';
import type { Services } from '../services/services';
import { executeAdmin } from './admin-operations';
import { probeAdminSocket } from './admin-socket-client';

/** Serves admin requests on a 0600 unix socket, one JSON line in, one JSON line out. */
export async function startAdminSocket(path: string, services: Services, logger: Logger): Promise<Server> {
  if (existsSync(path)) {
    if (await probeAdminSocket(path)) throw new Error(`another broker already serves ${path}`);
    unlinkSync(path); // left over from a crash
  }
  const server = createServer((socket) => serve(socket, services, logger));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Created with a restrictive umask so there is no moment where others could connect.
    const previous = process.umask(0o177);
    server.listen(path, () => {
      process.umask(previous);
      resolve();
    });
  });
  chmodSync(path, 0o600);
  return server;
}

function serve(socket: Socket, services: Services, logger: Logger): void {
  let buffer = '';
  let queue = Promise.resolve();
  const reply = (r: AdminResponse) => {
    if (!socket.destroyed) socket.write(`${JSON.stringify(r)}\n`);
  };
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_ADMIN_LINE_BYTES && !buffer.includes('\n')) {
      reply({ ok: false, status: 413, error: 'request line too long' });
      socket.end();
      return;
    }
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      queue = queue.then(() => handleLine(line, services, logger).then(reply));
      nl = buffer.indexOf('\n');
    }
  });
}

/** One request line of the admin socket, parsed by its schema (never throws). */
export function parseAdminLine(
  line: string,
): { ok: true; data: AdminRequest } | Extract<AdminResponse, { ok: false }> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return { ok: false, status: 400, error: 'request is not valid JSON' };
  }
  const parsed = AdminRequest.safeParse(json);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, status: 400, error: `invalid request: ${issue?.path.join('.')} ${issue?.message}` };
}

async function handleLine(line: string, services: Services, logger: Logger): Promise<AdminResponse> {
  const parsed = parseAdminLine(line);
  if (!parsed.ok) return parsed;
  try {
    const result = await executeAdmin(services, parsed.data);
    logger.info({ op: parsed.data.op }, 'admin request');
    return { ok: true, result };
  } catch (err) {
    if (err instanceof DomainError) {
      logger.warn({ op: parsed.data.op, status: err.status }, err.message);
      return { ok: false, status: err.status, error: err.message };
    }
    logger.error(
      { op: parsed.data.op, err: err instanceof Error ? err.stack : String(err) },
      'admin request failed',
    );
    return { ok: false, status: 500, error: 'internal error (see the broker log)' };
  }
}
