import fc from 'fast-check';
import {
  generateKeyPair,
  type KeyRotation,
  keyRotationMessage,
  signKeyRotation,
  verifyKeyRotation,
} from '../src';

describe('key rotation proof', () => {
  const old = generateKeyPair();
  const next = generateKeyPair();
  const rotation: KeyRotation = {
    deviceId: '6f1c2a7e-7d1f-4c36-9a51-1f2f0c3b9d11',
    address: '100.64.0.7',
    previousKey: old.publicKey,
    newKey: next.publicKey,
  };

  it('verifies a rotation signed by the previous key', () => {
    const sig = signKeyRotation(old.privateKey, rotation);
    expect(Buffer.from(sig, 'base64')).toHaveLength(64);
    expect(verifyKeyRotation(rotation, sig)).toBe(true);
  });

  it('refuses to sign with a key that is not the previous key', () => {
    expect(() => signKeyRotation(next.privateKey, rotation)).toThrow(/previous key/);
  });

  it('rejects the signature for any other field value', () => {
    const sig = signKeyRotation(old.privateKey, rotation);
    const other = generateKeyPair().publicKey;
    expect(verifyKeyRotation({ ...rotation, newKey: other }, sig)).toBe(false);
    expect(verifyKeyRotation({ ...rotation, deviceId: 'another-device' }, sig)).toBe(false);
    expect(verifyKeyRotation({ ...rotation, address: '100.64.0.8' }, sig)).toBe(false);
    expect(verifyKeyRotation({ ...rotation, previousKey: other }, sig)).toBe(false);
  });

  it('rejects a rotation signed by a wrong key (claimed previous key did not sign)', () => {
    const thief = generateKeyPair();
    const forged = signKeyRotation(thief.privateKey, { ...rotation, previousKey: thief.publicKey });
    expect(verifyKeyRotation(rotation, forged)).toBe(false);
  });

  it('returns false on malformed keys and signatures', () => {
    const sig = signKeyRotation(old.privateKey, rotation);
    expect(verifyKeyRotation(rotation, '')).toBe(false);
    expect(verifyKeyRotation(rotation, 'not base64!')).toBe(false);
    expect(verifyKeyRotation(rotation, sig.slice(0, -4))).toBe(false);
    expect(verifyKeyRotation(rotation, Buffer.alloc(64).toString('base64'))).toBe(false);
    expect(verifyKeyRotation({ ...rotation, previousKey: 'short' }, sig)).toBe(false);
    expect(verifyKeyRotation({ ...rotation, newKey: 'short' }, sig)).toBe(false);
    // Non-canonical base64 of the same bytes (last char's unused bits set).
    const sloppy = `${sig.slice(0, -3)}${sig.at(-3) === 'A' ? 'B' : 'A'}==`;
    expect(verifyKeyRotation(rotation, sloppy)).toBe(false);
  });

  it('encodes fields unambiguously, under a domain string', () => {
    const msg = keyRotationMessage(rotation);
    expect(msg.includes(Buffer.from('trellis key rotation v1'))).toBe(true);
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (a, b, c, d) => {
        fc.pre(a !== c || b !== d);
        const m1 = keyRotationMessage({ ...rotation, deviceId: a, address: b });
        const m2 = keyRotationMessage({ ...rotation, deviceId: c, address: d });
        return !m1.equals(m2);
      }),
    );
    // Shifting a character across the field boundary changes the bytes.
    const x = keyRotationMessage({ ...rotation, deviceId: 'ab', address: 'c' });
    const y = keyRotationMessage({ ...rotation, deviceId: 'a', address: 'bc' });
    expect(x.equals(y)).toBe(false);
  });

  it('throws when building a message from a malformed key', () => {
    expect(() => keyRotationMessage({ ...rotation, newKey: 'AAAA' })).toThrow();
  });
});
