import type { Agent } from 'node:https';
import { request } from 'node:https';
import { enrollProof } from '@trellis/crypto';
import {
  API_PATHS,
  BrokerInfo,
  BrokerRotation,
  type EnrollRequest,
  EnrollResponse,
  ErrorBody,
  MAX_HTTP_BODY_BYTES,
  type ResolveHost,
} from '@trellis/proto';
import { fixedLookup } from '@trellis/tls';
import type { ZodType } from 'zod';
import { brokerEndpointUrl, describeTarget } from '../trust/broker-url';
import { describeBrokerError } from '../util/network-error';

export class EnrollmentRejectedError extends Error {
  constructor(
    readonly statusCode: number,
    brokerMessage: string,
  ) {
    super(`enrollment rejected by the broker (${statusCode}): ${brokerMessage}`);
    this.name = 'EnrollmentRejectedError';
  }
}

/**
 * Enrolls with the first of the broker's instances that answers (every address of each name, in
 * order). A refusal is final: every instance shares the database, so all would say the same.
 */
export async function enrollWithAny(
  brokerUrls: readonly string[],
  agent: Agent,
  body: EnrollBody,
  privateKey: string,
  resolveHost: ResolveHost,
): Promise<{ response: EnrollResponse; url: string }> {
  const rotation = new BrokerRotation(brokerUrls);
  await rotation.newRound(resolveHost);
  const failures: string[] = [];
  for (let target = rotation.take(); target !== null; target = rotation.take()) {
    try {
      const response = await enroll(target.url, agent, body, privateKey, undefined, target.address);
      return { response, url: target.url };
    } catch (err) {
      if (err instanceof EnrollmentRejectedError) throw err;
      failures.push((err as Error).message);
    }
  }
  throw new Error(
    failures.length === 1 ? failures.join('') : `no broker instance answered: ${failures.join('; ')}`,
  );
}

/** What the agent enrolls with; the proof of its key is added per broker (it needs the broker's key). */
export type EnrollBody = Omit<EnrollRequest, 'proof'>;

/**
 * Enrolls at one broker: reads its static public key from `info` (over the same trusted TLS), then
 * POSTs the enrollment with proof of the device's private key, so a key enrolled already can be
 * enrolled again only by its holder.
 */
export async function enroll(
  brokerUrl: string,
  agent: Agent,
  body: EnrollBody,
  privateKey: string,
  timeoutMs = 15_000,
  /** Connect to this address of the URL's host name (null: resolve it). */
  address: string | null = null,
): Promise<EnrollResponse> {
  const call = <T>(path: string, payload: unknown, schema: ZodType<T>) =>
    brokerCall(brokerUrl, path, payload, schema, agent, timeoutMs, address);
  const info = await call(API_PATHS.info, undefined, BrokerInfo);
  const at = Date.now();
  const mac = enrollProof(privateKey, body.publicKey, info.brokerPublicKey, body.setupKey, at);
  const res = await call(API_PATHS.enroll, { ...body, proof: { at, mac } }, EnrollResponse);
  if (res.brokerPublicKey !== info.brokerPublicKey) {
    throw new Error('the broker answered the enrollment with another key than its info: refusing it');
  }
  return res;
}

/** One JSON request (GET without a payload, else POST) and its answer, checked by its schema. */
function brokerCall<T>(
  brokerUrl: string,
  path: string,
  body: unknown,
  schema: ZodType<T>,
  agent: Agent,
  timeoutMs: number,
  address: string | null,
): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const what = path === API_PATHS.enroll ? 'enrollment' : 'broker info';
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
            reject(new EnrollmentRejectedError(status, err.success ? err.data.message : text.slice(0, 200)));
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
