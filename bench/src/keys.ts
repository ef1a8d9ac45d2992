import { generateKeyPairSync } from 'node:crypto';

/** Lengths of the DER wrappers (RFC 8410) around a raw 32-byte X25519 key. */
const PKCS8_PREFIX = 16;
const SPKI_PREFIX = 12;

/**
 * Native X25519 key generation: thousands of simulated devices need it fast. The raw keys are cut
 * out of the DER encodings: exporting them as JWK instead deadlocked this machine's Node 20
 * (OpenSSL 3.0.19) after a few thousand keys, which hung `pnpm bench netmap` and `bench failover`
 * while they enrolled their devices (the main thread waiting on a futex for good).
 */
export function fastKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    privateKey: pkcs8.subarray(PKCS8_PREFIX).toString('base64'),
    publicKey: spki.subarray(SPKI_PREFIX).toString('base64'),
  };
}
