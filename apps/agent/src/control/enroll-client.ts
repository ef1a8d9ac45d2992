import type { Agent } from 'node:https';
import { request } from 'node:https';
import { type EnrollRequest, EnrollResponse, ErrorBody, MAX_HTTP_BODY_BYTES } from '@trellis/proto';
import { enrollUrl } from '../trust/broker-url';
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

/** POSTs the enrollment to the broker and validates its answer. */
export function enroll(
  brokerUrl: string,
  agent: Agent,
  body: EnrollRequest,
  timeoutMs = 15_000,
): Promise<EnrollResponse> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      enrollUrl(brokerUrl),
      {
        method: 'POST',
        agent,
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
      const message = describeBrokerError(err, brokerUrl);
      reject(message === err.message ? err : new Error(message));
    });
    req.end(payload);
  });
}
