import { createHash } from 'node:crypto';

/**
 * WireGuard stores private keys clamped (RFC 7748: clear bits 0-2, clear bit 255, set bit 254) and
 * reports them that way; the public key is the same either way. Compare keys in clamped form.
 */
export function clampPrivateKey(b64: string): string {
  const k = Buffer.from(b64, 'base64');
  if (k.length !== 32) throw new Error('not a 32-byte key');
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k.toString('base64');
}

/** A short fingerprint of a public key for people: the first 8 bytes of its SHA-256, hex with colons. */
export function keyFingerprint(publicKeyB64: string): string {
  const digest = createHash('sha256').update(Buffer.from(publicKeyB64, 'base64')).digest();
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
