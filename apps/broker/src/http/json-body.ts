import type { IncomingMessage, ServerResponse } from 'node:http';
import { API_PATHS, MAX_HTTP_BODY_BYTES, MAX_POLICY_BYTES } from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import { writeError } from './error-response';

export type RequestWithBody = IncomingMessage & { body?: unknown };

/**
 * Bodies that carry a whole policy file: MAX_POLICY_BYTES of text, which JSON escaping (`\n`,
 * `\"`) can double, plus the usual room for the rest of the body.
 */
export const POLICY_BODY_BYTES = 2 * MAX_POLICY_BYTES + MAX_HTTP_BODY_BYTES;

/** `METHOD path` of the routes allowed a larger body than the general limit, and theirs. */
export const LARGE_BODY_ROUTES: ReadonlyMap<string, number> = new Map([
  [`PUT ${API_PATHS.policy}`, POLICY_BODY_BYTES],
  [`POST ${API_PATHS.policy}/check`, POLICY_BODY_BYTES],
  [`POST ${API_PATHS.policy}/plan`, POLICY_BODY_BYTES],
]);

/** The body limit of one request: its route's in `routes`, else `limit`. */
export function bodyLimitFor(
  method: string,
  url: string | undefined,
  limit: number,
  routes: ReadonlyMap<string, number>,
): number {
  // As the router matches: without the query, any case, with or without a trailing slash.
  let path = (url ?? '').split('?')[0]!.toLowerCase();
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const own = routes.get(`${method.toUpperCase()} ${path}`);
  return own === undefined ? limit : Math.max(limit, own);
}

/**
 * Reads JSON request bodies itself so every failure is a JSON error: 415 for another content
 * type, 413 past `limit` bytes (without reading the rest), 400 for malformed JSON. The routes in
 * `largeRoutes` (by default those taking a policy file) have their own, larger limit, for requests
 * with credentials only: they all need a signed-in user, and nobody else gets to make the broker
 * hold more than the general limit.
 */
export function jsonBody(
  generalLimit: number,
  logger: Logger,
  metrics: BrokerMetrics,
  largeRoutes: ReadonlyMap<string, number> = LARGE_BODY_ROUTES,
) {
  return (req: RequestWithBody, res: ServerResponse, next: (err?: unknown) => void): void => {
    const method = req.method ?? 'GET';
    const limit =
      req.headers.authorization === undefined
        ? generalLimit
        : bodyLimitFor(method, req.url, generalLimit, largeRoutes);
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
