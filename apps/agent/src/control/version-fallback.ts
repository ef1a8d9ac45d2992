import { isVersionRefusal, LEGACY_CAPABILITY_VERSION } from '@trellis/proto';
import { BrokerRejectedError } from './broker-call';

/**
 * One HTTP call (enroll, device-auth) with the body's capability version; a broker from before
 * capability versions refuses any but 1 (400 `protocol_mismatch`): then once more with that one.
 */
export async function withVersionFallback<B extends { protocolVersion: number }, T>(
  body: B,
  call: (body: B) => Promise<T>,
): Promise<T> {
  try {
    return await call(body);
  } catch (err) {
    const retry =
      err instanceof BrokerRejectedError &&
      body.protocolVersion > LEGACY_CAPABILITY_VERSION &&
      isVersionRefusal(err.statusCode, err.code, err.brokerMessage);
    if (!retry) throw err;
    return call({ ...body, protocolVersion: LEGACY_CAPABILITY_VERSION });
  }
}
