import { decodeKey, publicKeyFromPrivate } from './keys';
import { XEDDSA_SIGNATURE_LENGTH, xeddsaSign, xeddsaVerify } from './xeddsa';

/** What a device signs with its old WireGuard key to vouch for its new one. */
export interface KeyRotation {
  deviceId: string;
  address: string;
  /** base64 WireGuard keys. */
  previousKey: string;
  newKey: string;
}

const DOMAIN = 'trellis key rotation v1';

/**
 * Canonical bytes: every field length-prefixed (u32 big-endian) so no two inputs share an encoding,
 * starting with a domain string so the signature cannot be replayed as any other Trellis message.
 * Keys go in raw (decodeKey accepts only canonical base64), so spelling cannot vary.
 * Binding device id and address stops a broker moving a rotation onto another device's pin.
 */
export function keyRotationMessage(input: KeyRotation): Buffer {
  const fields = [
    Buffer.from(DOMAIN, 'utf8'),
    Buffer.from(input.deviceId, 'utf8'),
    Buffer.from(input.address, 'utf8'),
    decodeKey(input.previousKey),
    decodeKey(input.newKey),
  ];
  return Buffer.concat(fields.flatMap((f) => [lengthPrefix(f.length), f]));
}

/** base64 XEdDSA signature by the previous key; throws if oldPrivateKey is not that key. */
export function signKeyRotation(oldPrivateKey: string, input: KeyRotation): string {
  if (publicKeyFromPrivate(oldPrivateKey) !== input.previousKey)
    throw new Error('the signing key is not the previous key of this rotation');
  return xeddsaSign(decodeKey(oldPrivateKey), keyRotationMessage(input)).toString('base64');
}

/** Never throws: any malformed key, field or signature is false. */
export function verifyKeyRotation(input: KeyRotation, signature: string): boolean {
  try {
    const sig = Buffer.from(signature, 'base64');
    if (sig.length !== XEDDSA_SIGNATURE_LENGTH || sig.toString('base64') !== signature) return false;
    return xeddsaVerify(decodeKey(input.previousKey), keyRotationMessage(input), sig);
  } catch {
    return false;
  }
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
