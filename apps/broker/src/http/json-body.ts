import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import { writeError } from './error-response';

export type RequestWithBody = IncomingMessage & { body?: unknown };

/**
 * Reads JSON request bodies itself so every failure is a JSON error: 415 for another content
 * type, 413 past `limit` bytes (without reading the rest), 400 for malformed JSON.
 */
export function jsonBody(limit: number, logger: Logger, metrics: BrokerMetrics) {
  return (req: RequestWithBody, res: ServerResponse, next: (err?: unknown) => void): void => {
    const method = req.method ?? 'GET';
    const declared = req.headers['content-length'];
    const hasBody =
      (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined;
    const reject = (status: number, kind: string, message: string, close = false) => {
      metrics.error(kind);
      logger.warn({ method, url: req.url, status, kind }, message);
      writeError(res, status, message, close);
    };
    if (!hasBody) {
      next();
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      req.resume();
      next();
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      reject(415, 'unsupported_media_type', 'request body must be application/json', true);
      req.resume();
      return;
    }
    if (declared !== undefined && Number(declared) > limit) {
      reject(413, 'payload_too_large', `request body larger than ${limit} bytes`, true);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        reject(413, 'payload_too_large', `request body larger than ${limit} bytes`, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      done = true;
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        req.body = text.length ? JSON.parse(text) : undefined;
      } catch {
        reject(400, 'bad_json', 'request body is not valid JSON');
        return;
      }
      next();
    });
  };
}
