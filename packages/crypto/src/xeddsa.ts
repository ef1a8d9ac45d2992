import { createHash, randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519';

/**
 * XEdDSA (Signal's spec, revision 1) over Curve25519: Ed25519-compatible signatures made with an
 * X25519 private key and checked against the X25519 public key, so a WireGuard key can sign.
 * Point arithmetic is noble's; scalars mod q are plain BigInt.
 */

const Point = ed25519.Point;
type EdPoint = InstanceType<typeof Point>;

/** Field prime p = 2^255 - 19 and group order q of the base point. */
const P = (1n << 255n) - 19n;
const Q = (1n << 252n) + 27742317777372353535851937790883648493n;

/** hash_1's prefix: 2^256 - 1 - 1 as 32 little-endian bytes (0xFE, then 31 × 0xFF). */
const HASH1_PREFIX = Buffer.concat([Buffer.from([0xfe]), Buffer.alloc(31, 0xff)]);

export const XEDDSA_SIGNATURE_LENGTH = 64;

export function xeddsaSign(
  privateKey: Uint8Array,
  message: Uint8Array,
  random: Uint8Array = randomBytes(64),
): Buffer {
  if (privateKey.length !== 32) throw new Error('XEdDSA private key must be 32 bytes');
  if (random.length !== 64) throw new Error('XEdDSA nonce randomness must be 64 bytes');
  const { A, a } = calculateKeyPair(privateKey);
  const r = hashToScalar(HASH1_PREFIX, toLittleEndian(a), message, random);
  const R = Point.BASE.multiply(r).toBytes();
  const h = hashToScalar(R, A, message);
  const s = (r + h * a) % Q;
  return Buffer.concat([R, toLittleEndian(s)]);
}

/** False for any malformed key or signature; never throws. */
export function xeddsaVerify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    if (!(publicKey instanceof Uint8Array) || !(message instanceof Uint8Array)) return false;
    if (!(signature instanceof Uint8Array) || signature.length !== XEDDSA_SIGNATURE_LENGTH) return false;
    const A = montgomeryToEdwardsPoint(publicKey);
    // A small-order key would let anyone forge with good odds; no real X25519 key is one.
    if (A === null || A.isSmallOrder()) return false;
    const R = signature.subarray(0, 32);
    const s = fromLittleEndian(signature.subarray(32));
    if (s >= Q) return false; // malleability: s and s + q would both pass
    if (fromLittleEndian(R) % (1n << 255n) >= P) return false; // non-canonical R
    const h = hashToScalar(R, A.toBytes(), message);
    const check = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(h));
    return Buffer.from(check.toBytes()).equals(R);
  } catch {
    return false;
  }
}

/**
 * The Edwards public key (sign bit 0) that XEdDSA verifies against, from an X25519 public key;
 * null if u is not canonical or not the u of a point on the curve (twist points).
 */
export function montgomeryToEdwards(publicKey: Uint8Array): Uint8Array | null {
  return montgomeryToEdwardsPoint(publicKey)?.toBytes() ?? null;
}

function montgomeryToEdwardsPoint(u32: Uint8Array): EdPoint | null {
  if (u32.length !== 32) return null;
  const u = fromLittleEndian(u32);
  if (u >= P) return null; // the spec rejects rather than masks the top bit
  const denominator = (u + 1n) % P;
  if (denominator === 0n) return null; // u = -1 has no Edwards image
  const y = mod((u - 1n) * modPow(denominator, P - 2n, P), P);
  try {
    return Point.fromBytes(toLittleEndian(y)); // sign bit 0; throws when x² has no root
  } catch {
    return null;
  }
}

/** calculate_key_pair: the Edwards key with sign bit 0 and the scalar that yields it. */
function calculateKeyPair(privateKey: Uint8Array): { A: Uint8Array; a: bigint } {
  const clamped = Uint8Array.from(privateKey);
  // As X25519 does, so the Edwards key matches the Montgomery public key WireGuard derives.
  clamped[0] = (clamped[0] ?? 0) & 248;
  clamped[31] = ((clamped[31] ?? 0) & 127) | 64;
  const k = fromLittleEndian(clamped) % Q;
  const E = Point.BASE.multiply(k).toBytes();
  const negative = ((E[31] ?? 0) & 0x80) !== 0;
  const A = Uint8Array.from(E);
  A[31] = (A[31] ?? 0) & 0x7f;
  return { A, a: negative ? (Q - k) % Q : k };
}

function hashToScalar(...parts: Uint8Array[]): bigint {
  const hash = createHash('sha512');
  for (const part of parts) hash.update(part);
  return fromLittleEndian(hash.digest()) % Q;
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] ?? 0);
  return n;
}

function toLittleEndian(n: bigint, length = 32): Uint8Array {
  const out = new Uint8Array(length);
  let v = n;
  for (let i = 0; i < length; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function mod(n: bigint, m: bigint): bigint {
  const r = n % m;
  return r < 0n ? r + m : r;
}

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return result;
}
