import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { edwardsToMontgomeryPub } from '@noble/curves/ed25519';
import fc from 'fast-check';
import { decodeKey, generateKeyPair, montgomeryToEdwards, xeddsaSign, xeddsaVerify } from '../src';

const P = (1n << 255n) - 19n;
const Q = (1n << 252n) + 27742317777372353535851937790883648493n;
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');

function le(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();
}

/** A raw X25519 pair from OpenSSL, not from the code under test. */
function nodeX25519(): { priv: Buffer; pub: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    priv: privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32),
    pub: publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
  };
}

/** OpenSSL's Ed25519 verifier: an independent check that XEdDSA output is a plain Ed25519 signature. */
function opensslEd25519Verify(edwardsKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = createPublicKey({
    key: Buffer.concat([ED25519_SPKI, edwardsKey]),
    format: 'der',
    type: 'spki',
  });
  return verify(null, message, key, signature);
}

function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(bytes);
  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return out;
}

describe('XEdDSA', () => {
  const { priv, pub } = nodeX25519();
  const message = Buffer.from('hello, mesh');
  const signature = xeddsaSign(priv, message);

  it('signs 64 bytes that verify against the X25519 public key', () => {
    expect(signature).toHaveLength(64);
    expect(xeddsaVerify(pub, message, signature)).toBe(true);
  });

  it('verifies with the keys of generateKeyPair (unclamped private key)', () => {
    const pair = generateKeyPair();
    const sig = xeddsaSign(decodeKey(pair.privateKey), message);
    expect(xeddsaVerify(decodeKey(pair.publicKey), message, sig)).toBe(true);
  });

  it('matches the known answer of the reference implementation', () => {
    // xeddsa_fast_test of the XEdDSA reference code (curve25519 "additions" in libsignal):
    // private key all zero but byte 8 = 189 (then clamped), 200 zero bytes, zero randomness.
    const k = Buffer.alloc(32);
    k[8] = 189;
    const expected =
      '11c7f3e6c4df9e8a5150e1db3b30f92de3a3b3aa438656545fa7390f4bcc7bb2' +
      '6c431d9e90643e4f0eaa0e9c557766fa69ada576d63dcaf2ac326c11d0b97702';
    const sig = xeddsaSign(k, Buffer.alloc(200), Buffer.alloc(64));
    expect(sig.toString('hex')).toBe(expected);
    expect(xeddsaVerify(opensslPublicKey(k), Buffer.alloc(200), sig)).toBe(true);
  });

  it('is randomized, yet deterministic for given randomness', () => {
    const z = randomBytes(64);
    expect(xeddsaSign(priv, message, z)).toEqual(xeddsaSign(priv, message, z));
    expect(xeddsaSign(priv, message)).not.toEqual(xeddsaSign(priv, message));
  });

  it('rejects a tampered message, signature or key', () => {
    expect(xeddsaVerify(pub, Buffer.from('hello, mesh!'), signature)).toBe(false);
    expect(xeddsaVerify(pub, message, flipBit(signature, 5))).toBe(false);
    expect(xeddsaVerify(pub, message, flipBit(signature, 300))).toBe(false);
    expect(xeddsaVerify(nodeX25519().pub, message, signature)).toBe(false);
  });

  it('produces Ed25519 signatures that OpenSSL verifies under the converted key', () => {
    const edwards = montgomeryToEdwards(pub);
    expect(edwards).not.toBeNull();
    expect(opensslEd25519Verify(edwards as Uint8Array, message, signature)).toBe(true);
    expect(opensslEd25519Verify(edwards as Uint8Array, Buffer.from('other'), signature)).toBe(false);
  });

  it('converts OpenSSL X25519 public keys to the Edwards key with sign bit 0, and back', () => {
    for (let i = 0; i < 20; i++) {
      const k = nodeX25519();
      const edwards = montgomeryToEdwards(k.pub) as Uint8Array;
      expect((edwards[31] ?? 0) & 0x80).toBe(0);
      // Back to u with noble's birational map: an independent implementation of the formula.
      expect(Buffer.from(edwardsToMontgomeryPub(edwards))).toEqual(k.pub);
    }
  });

  it('returns false, never throws, on malformed input', () => {
    const good = xeddsaVerify(pub, message, signature);
    expect(good).toBe(true);
    const bad: Array<[Uint8Array, Uint8Array, Uint8Array]> = [
      [pub.subarray(1), message, signature],
      [Buffer.concat([pub, Buffer.alloc(1)]), message, signature],
      [Buffer.alloc(0), message, signature],
      [pub, message, signature.subarray(1)],
      [pub, message, Buffer.concat([signature, Buffer.alloc(1)])],
      [pub, message, Buffer.alloc(0)],
      [pub, message, Buffer.alloc(64)],
      [pub, message, Buffer.alloc(64, 0xff)],
    ];
    for (const [k, m, s] of bad) expect(xeddsaVerify(k, m, s)).toBe(false);
    const notBytes = 'not bytes' as unknown as Uint8Array;
    expect(xeddsaVerify(notBytes, message, signature)).toBe(false);
    expect(xeddsaVerify(pub, notBytes, signature)).toBe(false);
    expect(xeddsaVerify(pub, message, notBytes)).toBe(false);
  });

  it('rejects public keys with u >= p, u = -1, off-curve u and small-order u', () => {
    expect(xeddsaVerify(le(P), message, signature)).toBe(false);
    expect(xeddsaVerify(le(P + 1n), message, signature)).toBe(false);
    expect(xeddsaVerify(Buffer.alloc(32, 0xff), message, signature)).toBe(false);
    // The same key with the top bit set: RFC 7748 would mask it, the XEdDSA spec rejects it.
    expect(xeddsaVerify(flipBit(pub, 255), message, signature)).toBe(false);
    expect(xeddsaVerify(le(P - 1n), message, signature)).toBe(false);
    expect(montgomeryToEdwards(le(P - 1n))).toBeNull();
    expect(montgomeryToEdwards(le(2n))).toBeNull(); // u = 2 lies on the twist
    expect(xeddsaVerify(le(0n), message, signature)).toBe(false);
    expect(xeddsaVerify(le(1n), message, signature)).toBe(false);
  });

  it('rejects s >= q (the malleable twin of a valid signature) and a non-canonical R', () => {
    const s = BigInt(`0x${Buffer.from(signature.subarray(32)).reverse().toString('hex')}`);
    const twin = Buffer.concat([signature.subarray(0, 32), le(s + Q)]);
    expect(xeddsaVerify(pub, message, twin)).toBe(false);
    const withQ = Buffer.concat([signature.subarray(0, 32), le(Q)]);
    expect(xeddsaVerify(pub, message, withQ)).toBe(false);
    const nonCanonicalR = Buffer.concat([le(P), signature.subarray(32)]);
    expect(xeddsaVerify(pub, message, nonCanonicalR)).toBe(false);
  });

  it('rejects an invalid private key length or randomness length when signing', () => {
    expect(() => xeddsaSign(priv.subarray(1), message)).toThrow();
    expect(() => xeddsaSign(priv, message, randomBytes(32))).toThrow();
  });

  describe('properties', () => {
    const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const msg = fc.uint8Array({ maxLength: 200 });
    const rnd = fc.uint8Array({ minLength: 64, maxLength: 64 });

    it('every signature verifies, with XEdDSA and with OpenSSL Ed25519', () => {
      fc.assert(
        fc.property(key, msg, rnd, (k, m, z) => {
          const sig = xeddsaSign(k, m, z);
          const u = opensslPublicKey(k);
          return (
            xeddsaVerify(u, m, sig) && opensslEd25519Verify(montgomeryToEdwards(u) as Uint8Array, m, sig)
          );
        }),
        { numRuns: 60 },
      );
    });

    it('any single flipped bit of message or signature fails', () => {
      fc.assert(
        fc.property(key, msg, rnd, fc.nat(), fc.boolean(), (k, m, z, bit, inMessage) => {
          const sig = xeddsaSign(k, m, z);
          const u = opensslPublicKey(k);
          if (inMessage) {
            if (m.length === 0) return true;
            return !xeddsaVerify(u, flipBit(m, bit % (m.length * 8)), sig);
          }
          return !xeddsaVerify(u, m, flipBit(sig, bit % 512));
        }),
        { numRuns: 60 },
      );
    });

    it('never throws on arbitrary bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 40 }), msg, fc.uint8Array({ maxLength: 70 }), (k, m, s) => {
          return typeof xeddsaVerify(k, m, s) === 'boolean';
        }),
        { numRuns: 300 },
      );
    });
  });
});

/** The X25519 public key of a raw private key, through OpenSSL. */
function opensslPublicKey(priv: Uint8Array): Buffer {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), priv]);
  const pub = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  return pub.export({ format: 'der', type: 'spki' }).subarray(-32);
}
