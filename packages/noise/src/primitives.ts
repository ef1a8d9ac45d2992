import { chacha20poly1305 } from '@noble/ciphers/chacha';
import { x25519 } from '@noble/curves/ed25519';
import { blake2s } from '@noble/hashes/blake2';
import { hmac } from '@noble/hashes/hmac';
import { KEY_LENGTH, MAC_LENGTH } from './constants';

// The cryptographic functions named in the WireGuard whitepaper (section 5.4), built on @noble.

export const EMPTY = new Uint8Array(0);

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** HASH(input): BLAKE2s with a 32-byte digest. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  return blake2s(concat(...parts));
}

/** MAC(key, input): keyed BLAKE2s with a 16-byte digest (mac1, mac2). */
export function mac(key: Uint8Array, input: Uint8Array): Uint8Array {
  return blake2s(input, { key, dkLen: MAC_LENGTH });
}

export function hmacBlake2s(key: Uint8Array, input: Uint8Array): Uint8Array {
  return hmac(blake2s, key, input);
}

/** KDFn(key, input): HKDF with HMAC-BLAKE2s, returning n 32-byte outputs. */
export function kdf(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const prk = hmacBlake2s(key, input);
  const out: Uint8Array[] = [];
  let previous: Uint8Array = EMPTY;
  for (let i = 1; i <= n; i++) {
    previous = hmacBlake2s(prk, concat(previous, Uint8Array.of(i)));
    out.push(previous);
  }
  return out;
}

export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(1, key, input)[0]!;
}

export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [a, b] = kdf(2, key, input);
  return [a!, b!];
}

export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const [a, b, c] = kdf(3, key, input);
  return [a!, b!, c!];
}

/** The 96-bit AEAD nonce: 32 zero bits, then the 64-bit counter little-endian. */
function nonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}

export function aeadSeal(
  key: Uint8Array,
  counter: bigint,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Uint8Array {
  return chacha20poly1305(key, nonce(counter), aad).encrypt(plaintext);
}

/** Opens an AEAD box; null when authentication fails. */
export function aeadOpen(
  key: Uint8Array,
  counter: bigint,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  try {
    return chacha20poly1305(key, nonce(counter), aad).decrypt(ciphertext);
  } catch {
    return null;
  }
}

export interface StaticKeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateKeyPair(): StaticKeyPair {
  const privateKey = x25519.utils.randomPrivateKey();
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

export function keyPairFromPrivate(privateKey: Uint8Array): StaticKeyPair {
  if (privateKey.length !== KEY_LENGTH) throw new Error('private key must be 32 bytes');
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

/** DH(private, public); null for a low-order public key (all-zero result), which WireGuard refuses. */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  try {
    const shared = x25519.getSharedSecret(privateKey, publicKey);
    return shared.some((b) => b !== 0) ? shared : null;
  } catch {
    return null;
  }
}

/** Constant-time equality for MACs. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
