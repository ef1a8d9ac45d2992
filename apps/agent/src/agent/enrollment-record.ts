import { hostname, release } from 'node:os';
import {
  type BrokerTrust,
  CAPABILITY_VERSION,
  type DeviceAuthRequest,
  type EnrollResponse,
  type SignInPrompt,
  type UpRequest,
} from '@trellis/proto';
import type { Enrollment } from '../state/state-store';
import { parseBrokerUrls } from '../trust/broker-url';
import { UserError } from '../util/user-error';

/** What `up` answered: its message, and the sign-in the user must approve when one is pending. */
export interface UpResult {
  message: string;
  signIn?: SignInPrompt;
}

/** The URLs an `up` asks for (`brokers`, or an older CLI's `broker`); null: none given. */
export function requestedBrokers(req: UpRequest): string[] | null {
  const given = [...(req.brokers ?? []), ...(req.broker ? [req.broker] : [])];
  if (given.length === 0) return null;
  try {
    return parseBrokerUrls(given);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

/** What this device says about itself when it enrolls (add the setup key) or signs in. */
export function deviceBody(
  publicKey: string,
  name: string | undefined,
  endpoints: string[],
): Omit<DeviceAuthRequest, 'proof'> {
  return {
    protocolVersion: CAPABILITY_VERSION,
    publicKey,
    ...(name ? { name } : {}),
    hostname: hostname(),
    os: `linux ${release()}`,
    endpoints,
  };
}

/** The record kept on disk for an enrollment the broker answered. */
export function enrollmentFrom(
  res: EnrollResponse,
  brokerUrls: string[],
  trust: BrokerTrust,
  publicKey: string,
): Enrollment {
  return {
    deviceId: res.deviceId,
    brokerUrls,
    brokerPublicKey: res.brokerPublicKey,
    trust,
    publicKey,
    name: res.name,
    dnsName: res.dnsName,
    address: res.address,
    accountName: res.accountName,
    overlayPrefix: res.overlayPrefix,
    enrolledAt: new Date().toISOString(),
    wantUp: true,
  };
}
