import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { ErrorBody } from '@trellis/proto';

export function errorBody(status: number, message: string, code?: string): ErrorBody {
  return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, ...(code ? { code } : {}) };
}

/** Writes an ErrorBody directly (for middleware that runs before Nest's routing). */
export function writeError(
  res: ServerResponse,
  status: number,
  message: string,
  closeConnection = false,
  code?: string,
): void {
  if (res.headersSent) return;
  const body = JSON.stringify(errorBody(status, message, code));
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  if (closeConnection) res.setHeader('connection', 'close');
  res.end(body);
}
