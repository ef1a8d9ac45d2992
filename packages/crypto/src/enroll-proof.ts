import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import { concat, equalMac } from './bytes';
import { pairKey } from './control-auth';
import { toBase64 } from './keys';

/**
 * Proof that an enrollment comes from the holder of the device's private key. Public keys are no
 * secret (every member of an account can list them), so without it anyone with a setup key could
 * re-enroll an existing device's key and rewrite its endpoints. The MAC is keyed by the device's
 * and the broker's static X25519 secret and covers the setup key and the time of the request.
 */
const SALT = new TextEncoder().encode('trellis enroll v1');
const LABEL = new TextEncoder().encode('enroll');

/** How far a proof's time may lie from the broker's clock (either way). */
export const ENROLL_PROOF_MAX_SKEW_MS = 10 * 60_000;

function enrollMac(key: Uint8Array, setupKey: string, at: number): string {
  const body = concat(
    LABEL,
    sha256(new TextEncoder().encode(setupKey)),
    new TextEncoder().encode(String(at)),
  );
  return toBase64(hmac(sha256, key, body));
}

/** Device side: the proof for an enrollment with `setupKey` at `at` (ms since the epoch). */
export function enrollProof(
  devicePrivate: string,
  devicePublic: string,
  brokerPublic: string,
  setupKey: string,
  at: number,
): string {
  return enrollMac(pairKey(SALT, devicePrivate, brokerPublic, devicePublic, brokerPublic), setupKey, at);
}

/** Broker side: whether `mac` proves the device key for this setup key, made within the skew of `now`. */
export function verifyEnrollProof(
  brokerPrivate: string,
  brokerPublic: string,
  devicePublic: string,
  setupKey: string,
  proof: { at: number; mac: string },
  now: number,
): boolean {
  if (Math.abs(now - proof.at) > ENROLL_PROOF_MAX_SKEW_MS) return false;
  const key = pairKey(SALT, brokerPrivate, devicePublic, devicePublic, brokerPublic);
  return equalMac(proof.mac, enrollMac(key, setupKey, proof.at));
}
