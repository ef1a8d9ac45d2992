import type { Agent } from 'node:https';
import { request } from 'node:https';
import {
  BrokerRotation,
  type EnrollRequest,
  EnrollResponse,
  ErrorBody,
  MAX_HTTP_BODY_BYTES,
  type ResolveHost,
} from '@trellis/proto';
import { fixedLookup } from '@trellis/tls';
import { describeTarget, enrollUrl } from '../trust/broker-url';
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
  body: EnrollRequest,
  resolveHost: ResolveHost,
): Promise<{ response: EnrollResponse; url: string }> {
  const rotation = new BrokerRotation(brokerUrls);
  await rotation.newRound(resolveHost);
  const failures: string[] = [];
  for (let target = rotation.take(); target !== null; target = rotation.take()) {
    try {
      return { response: await enroll(target.url, agent, body, undefined, target.address), url: target.url };
    } catch (err) {
      if (err instanceof EnrollmentRejectedError) throw err;
      failures.push((err as Error).message);
    }
  }
  throw new Error(
    failures.length === 1 ? failures.join('') : `no broker instance answered: ${failures.join('; ')}`,
  );
}

/** POSTs the enrollment to the broker and validates its answer. */
export function enroll(
  brokerUrl: string,
  agent: Agent,
  body: EnrollRequest,
  timeoutMs = 15_000,
  /** Connect to this address of the URL's host name (null: resolve it). */
  address: string | null = null,
): Promise<EnrollResponse> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      enrollUrl(brokerUrl),
      {
        method: 'POST',
        agent,
        ...(address !== null ? { lookup: fixedLookup(address) } : {}),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          if (text.length > MAX_HTTP_BODY_BYTES) req.destroy(new Error('enrollment answer too large'));
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
          const ok = EnrollResponse.safeParse(json);
          if (!ok.success) reject(new Error(`broker sent an invalid enrollment answer: ${ok.error.message}`));
          else resolve(ok.data);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`enrollment timed out after ${timeoutMs} ms`)));
    req.on('error', (err: Error) => {
      const message = describeBrokerError(err, describeTarget({ url: brokerUrl, address }));
      reject(message === err.message ? err : new Error(message));
    });
    req.end(payload);
  });
}
