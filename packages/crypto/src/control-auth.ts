import { randomBytes } from 'node:crypto';
import { hkdf } from '@noble/hashes/hkdf';
import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import { concat, equalMac } from './bytes';
import { decodeKey, sharedSecret, toBase64 } from './keys';

/**
 * Mutual proof of key possession on the control channel, without a bearer secret on the device.
 * Both sides derive K = HKDF-SHA256(X25519(own private, other public), salt, device‖broker public keys).
 * The broker proves itself over the client's nonce, the device over the broker's nonce, each
 * with a distinct label so neither proof can be reflected back as the other.
 */
const SALT = new TextEncoder().encode('trellis control auth v1');
const BROKER_LABEL = new TextEncoder().encode('broker');
const DEVICE_LABEL = new TextEncoder().encode('device');

export function newNonce(): string {
  return randomBytes(32).toString('base64');
}

/** The key a device and the broker share: HKDF over their static X25519 secret, per purpose (salt). */
export function pairKey(
  salt: Uint8Array,
  ownPrivate: string,
  otherPublic: string,
  devicePublic: string,
  brokerPublic: string,
): Uint8Array {
  const ikm = sharedSecret(ownPrivate, otherPublic);
  const info = concat(decodeKey(devicePublic), decodeKey(brokerPublic));
  return hkdf(sha256, ikm, salt, info, 32);
}

function sessionKey(
  ownPrivate: string,
  otherPublic: string,
  devicePublic: string,
  brokerPublic: string,
): Uint8Array {
  return pairKey(SALT, ownPrivate, otherPublic, devicePublic, brokerPublic);
}

function proof(key: Uint8Array, label: Uint8Array, a: string, b: string): string {
  return toBase64(hmac(sha256, key, concat(label, Buffer.from(a, 'base64'), Buffer.from(b, 'base64'))));
}

/** Broker side: holds its static private key, knows the device's enrolled public key. */
export class BrokerAuthenticator {
  private readonly key: Uint8Array;
  constructor(brokerPrivate: string, brokerPublic: string, devicePublic: string) {
    this.key = sessionKey(brokerPrivate, devicePublic, devicePublic, brokerPublic);
  }
  brokerProof(clientNonce: string, brokerNonce: string): string {
    return proof(this.key, BROKER_LABEL, clientNonce, brokerNonce);
  }
  verifyDevice(proofB64: string, clientNonce: string, brokerNonce: string): boolean {
    return equalMac(proofB64, proof(this.key, DEVICE_LABEL, brokerNonce, clientNonce));
  }
}

/** Device side: holds its WireGuard private key, pins the broker's static public key from enrollment. */
export class DeviceAuthenticator {
  private readonly key: Uint8Array;
  constructor(devicePrivate: string, devicePublic: string, brokerPublic: string) {
    this.key = sessionKey(devicePrivate, brokerPublic, devicePublic, brokerPublic);
  }
  verifyBroker(proofB64: string, clientNonce: string, brokerNonce: string): boolean {
    return equalMac(proofB64, proof(this.key, BROKER_LABEL, clientNonce, brokerNonce));
  }
  deviceProof(clientNonce: string, brokerNonce: string): string {
    return proof(this.key, DEVICE_LABEL, brokerNonce, clientNonce);
  }
}
