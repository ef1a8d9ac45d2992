import type { Agent } from 'node:https';
import { request } from 'node:https';
import { API_PATHS, BrokerInfo, ErrorBody, MAX_HTTP_BODY_BYTES } from '@trellis/proto';
import { fixedLookup } from '@trellis/tls';
import type { ZodType } from 'zod';
import { brokerEndpointUrl, describeTarget } from '../trust/broker-url';
import { describeBrokerError } from '../util/network-error';

/** The broker answered, and said no: `code` says why for a program (ErrorBody.code). */
export class BrokerRejectedError extends Error {
  constructor(
    what: string,
    readonly statusCode: number,
    readonly brokerMessage: string,
    readonly code: string | undefined,
  ) {
    super(`${what} rejected by the broker (${statusCode}): ${brokerMessage}`);
    this.name = 'BrokerRejectedError';
  }
}

export interface BrokerCallOptions {
  agent: Agent;
  timeoutMs: number;
  /** Connect to this address of the URL's host name (null: resolve it). */
  address: string | null;
  /** What the call is, for its errors ("enrollment", "sign-in"). */
  what: string;
}

/** One JSON request (GET without a payload, else POST) and its answer, checked by its schema. */
export function brokerCall<T>(
  brokerUrl: string,
  path: string,
  body: unknown,
  schema: ZodType<T>,
  { agent, timeoutMs, address, what }: BrokerCallOptions,
): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      brokerEndpointUrl(brokerUrl, path),
      {
        method: payload === undefined ? 'GET' : 'POST',
        agent,
        ...(address !== null ? { lookup: fixedLookup(address) } : {}),
        headers:
          payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          if (text.length > MAX_HTTP_BODY_BYTES) req.destroy(new Error(`${what} answer too large`));
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            reject(new Error(`broker answered ${status} with a body that is not JSON`));
            return;
          }
          if (status < 200 || status >= 300) {
            const err = ErrorBody.safeParse(json);
            const message = err.success ? err.data.message : text.slice(0, 200);
            reject(new BrokerRejectedError(what, status, message, err.success ? err.data.code : undefined));
            return;
          }
          const ok = schema.safeParse(json);
          if (!ok.success) reject(new Error(`broker sent an invalid ${what} answer: ${ok.error.message}`));
          else resolve(ok.data);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${what} timed out after ${timeoutMs} ms`)));
    req.on('error', (err: Error) => {
      const message = describeBrokerError(err, describeTarget({ url: brokerUrl, address }));
      reject(message === err.message ? err : new Error(message));
    });
    req.end(payload);
  });
}

/** The broker's `info` (its static key, which enrollment proofs are keyed with). */
export function brokerInfo(brokerUrl: string, options: Omit<BrokerCallOptions, 'what'>): Promise<BrokerInfo> {
  return brokerCall(brokerUrl, API_PATHS.info, undefined, BrokerInfo, { ...options, what: 'broker info' });
}
