import { x25519 } from '@noble/curves/ed25519';

/** A WireGuard (Curve25519) key pair, both halves base64 as `wg` prints them. */
export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const priv = x25519.utils.randomPrivateKey();
  return { privateKey: toBase64(priv), publicKey: toBase64(x25519.getPublicKey(priv)) };
}

export function publicKeyFromPrivate(privateKey: string): string {
  return toBase64(x25519.getPublicKey(decodeKey(privateKey)));
}

/** X25519 shared secret; throws on a low-order peer key (all-zero result), as WireGuard refuses it. */
export function sharedSecret(
  privateKey: string | Uint8Array,
  peerPublicKey: string | Uint8Array,
): Uint8Array {
  const priv = typeof privateKey === 'string' ? decodeKey(privateKey) : privateKey;
  const pub = typeof peerPublicKey === 'string' ? decodeKey(peerPublicKey) : peerPublicKey;
  const out = x25519.getSharedSecret(priv, pub);
  if (out.every((b) => b === 0)) throw new Error('low-order public key');
  return out;
}

export function decodeKey(b64: string): Uint8Array {
  const buf = Buffer.from(b64, 'base64');
  if (buf.length !== 32 || buf.toString('base64') !== b64) throw new Error('not a 32-byte base64 key');
  return new Uint8Array(buf);
}

/** Hex form used by WireGuard's UAPI (`public_key=…`). */
export function keyToHex(b64: string): string {
  return Buffer.from(decodeKey(b64)).toString('hex');
}

export function keyFromHex(hex: string): string {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error('not a 32-byte hex key');
  return Buffer.from(hex, 'hex').toString('base64');
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
