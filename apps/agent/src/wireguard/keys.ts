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
