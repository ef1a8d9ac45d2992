import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
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

/**
 * Private keys imported into OpenSSL, by their base64 text: importing one derives its public half
 * (a scalar multiplication), which was a tenth of a broker's CPU in a reconnection storm where
 * every connection used the same broker key. A process holds a handful of keys; a few more evict
 * the oldest.
 */
const importedKeys = new Map<string, KeyObject>();
const IMPORTED_KEYS_MAX = 8;

function privateKeyObject(privateKey: string | Uint8Array): KeyObject {
  const raw = typeof privateKey === 'string' ? decodeKey(privateKey) : privateKey;
  const text = typeof privateKey === 'string' ? privateKey : toBase64(raw);
  let key = importedKeys.get(text);
  if (!key) {
    key = createPrivateKey({ key: x25519Jwk(raw, 'private'), format: 'jwk' });
    if (importedKeys.size >= IMPORTED_KEYS_MAX) importedKeys.delete(importedKeys.keys().next().value!);
    importedKeys.set(text, key);
  }
  return key;
}

/**
 * X25519 shared secret through OpenSSL (about 100× faster than pure JS, which matters when
 * thousands of devices authenticate at once); throws on a low-order peer key (all-zero result),
 * as WireGuard refuses it.
 */
export function sharedSecret(
  privateKey: string | Uint8Array,
  peerPublicKey: string | Uint8Array,
): Uint8Array {
  const pub = typeof peerPublicKey === 'string' ? decodeKey(peerPublicKey) : peerPublicKey;
  let out: Uint8Array;
  try {
    out = diffieHellman({
      privateKey: privateKeyObject(privateKey),
      publicKey: createPublicKey({ key: x25519Jwk(pub, 'public'), format: 'jwk' }),
    });
  } catch {
    // OpenSSL refuses to derive from a low-order point.
    throw new Error('low-order public key');
  }
  if (out.every((b) => b === 0)) throw new Error('low-order public key');
  return new Uint8Array(out);
}

/**
 * A raw 32-byte X25519 key as a JWK (RFC 8037), which Node imports straight from its raw bytes.
 * Imported as DER (PKCS#8 / SPKI), OpenSSL 3's decoders took 380 µs per private and 89 µs per
 * public key here, against 34 and 12 µs: a connection's authentication imports one on each side.
 * For a private key Node reads only `d` and derives the public half itself; `x` must be a string.
 */
function x25519Jwk(raw: Uint8Array, kind: 'private' | 'public'): JsonWebKey {
  const b64 = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  return kind === 'private'
    ? { kty: 'OKP', crv: 'X25519', d: b64, x: '' }
    : { kty: 'OKP', crv: 'X25519', x: b64 };
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
