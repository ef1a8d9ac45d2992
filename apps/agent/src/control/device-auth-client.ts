import type { Agent } from 'node:https';
import { enrollProof } from '@trellis/crypto';
import {
  API_PATHS,
  DEVICE_AUTH_PROOF_LABEL,
  type DeviceAuthRequest,
  DeviceAuthResponse,
  EnrollResponse,
} from '@trellis/proto';
import type { PollResult } from '../sign-in/sign-in-poller';
import { BrokerRejectedError, brokerCall, brokerInfo } from './broker-call';
import { withVersionFallback } from './version-fallback';

export interface DeviceAuthCallOptions {
  agent: Agent;
  /** Connect to this address of the URL's host name (null: resolve it). */
  address: string | null;
  timeoutMs?: number;
}

/**
 * Asks one broker for a sign-in code pair (RFC 8628), with proof of the device's private key keyed
 * with the broker's static key from `info`, so a key enrolled already can sign in again only with it.
 */
export async function startDeviceAuth(
  brokerUrl: string,
  body: Omit<DeviceAuthRequest, 'proof'>,
  privateKey: string,
  { agent, address, timeoutMs = 15_000 }: DeviceAuthCallOptions,
): Promise<{ started: DeviceAuthResponse; brokerPublicKey: string }> {
  const info = await brokerInfo(brokerUrl, { agent, timeoutMs, address });
  const at = Date.now();
  const mac = enrollProof(privateKey, body.publicKey, info.brokerPublicKey, DEVICE_AUTH_PROOF_LABEL, at);
  const started = await withVersionFallback({ ...body, proof: { at, mac } }, (request) =>
    brokerCall(brokerUrl, API_PATHS.deviceAuth, request, DeviceAuthResponse, {
      agent,
      timeoutMs,
      address,
      what: 'sign-in',
    }),
  );
  return { started, brokerPublicKey: info.brokerPublicKey };
}

/** One poll for the enrollment; never throws: a failure to reach the broker is a result too. */
export async function pollDeviceToken(
  brokerUrl: string,
  deviceCode: string,
  brokerPublicKey: string,
  { agent, address, timeoutMs = 15_000 }: DeviceAuthCallOptions,
): Promise<PollResult> {
  try {
    const response = await brokerCall(brokerUrl, API_PATHS.deviceAuthToken, { deviceCode }, EnrollResponse, {
      agent,
      timeoutMs,
      address,
      what: 'sign-in',
    });
    if (response.brokerPublicKey !== brokerPublicKey) {
      return {
        kind: 'refused',
        code: 'broker_key',
        message: 'the broker answered with another key than its info',
      };
    }
    return { kind: 'granted', response };
  } catch (err) {
    if (err instanceof BrokerRejectedError && err.statusCode < 500) {
      return { kind: 'refused', code: err.code ?? `http_${err.statusCode}`, message: err.brokerMessage };
    }
    return { kind: 'unreachable', message: (err as Error).message };
  }
}
