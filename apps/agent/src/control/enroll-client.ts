import type { Agent } from 'node:https';
import { enrollProof } from '@trellis/crypto';
import {
  API_PATHS,
  BrokerRotation,
  type EnrollRequest,
  EnrollResponse,
  type ResolveHost,
} from '@trellis/proto';
import { BrokerRejectedError, brokerCall, brokerInfo } from './broker-call';
import { withVersionFallback } from './version-fallback';

/** A refusal of the enrollment (or of the broker info before it). */
export { BrokerRejectedError as EnrollmentRejectedError } from './broker-call';

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
      if (err instanceof BrokerRejectedError) throw err;
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
  const info = await brokerInfo(brokerUrl, { agent, timeoutMs, address });
  const at = Date.now();
  const mac = enrollProof(privateKey, body.publicKey, info.brokerPublicKey, body.setupKey, at);
  const res = await withVersionFallback({ ...body, proof: { at, mac } }, (request) =>
    brokerCall(brokerUrl, API_PATHS.enroll, request, EnrollResponse, {
      agent,
      timeoutMs,
      address,
      what: 'enrollment',
    }),
  );
  if (res.brokerPublicKey !== info.brokerPublicKey) {
    throw new Error('the broker answered the enrollment with another key than its info: refusing it');
  }
  return res;
}
