import {
  BrokerAuthenticator,
  DeviceAuthenticator,
  ENROLL_PROOF_MAX_SKEW_MS,
  enrollProof,
  generateKeyPair,
  newNonce,
  sharedSecret,
  verifyEnrollProof,
} from '../src';

describe('control channel challenge-response', () => {
  const broker = generateKeyPair();
  const device = generateKeyPair();

  it('accepts the real device and the real broker', () => {
    const b = new BrokerAuthenticator(broker.privateKey, broker.publicKey, device.publicKey);
    const d = new DeviceAuthenticator(device.privateKey, device.publicKey, broker.publicKey);
    const cn = newNonce();
    const bn = newNonce();
    expect(d.verifyBroker(b.brokerProof(cn, bn), cn, bn)).toBe(true);
    expect(b.verifyDevice(d.deviceProof(cn, bn), cn, bn)).toBe(true);
  });

  it('rejects a device that does not hold the private key', () => {
    const thief = generateKeyPair();
    const b = new BrokerAuthenticator(broker.privateKey, broker.publicKey, device.publicKey);
    // The thief knows the device's public key but signs with its own private key.
    const d = new DeviceAuthenticator(thief.privateKey, device.publicKey, broker.publicKey);
    const cn = newNonce();
    const bn = newNonce();
    expect(b.verifyDevice(d.deviceProof(cn, bn), cn, bn)).toBe(false);
  });

  it('rejects a replayed proof under a fresh broker nonce', () => {
    const b = new BrokerAuthenticator(broker.privateKey, broker.publicKey, device.publicKey);
    const d = new DeviceAuthenticator(device.privateKey, device.publicKey, broker.publicKey);
    const cn = newNonce();
    const old = d.deviceProof(cn, newNonce());
    expect(b.verifyDevice(old, cn, newNonce())).toBe(false);
  });

  it('does not accept the broker proof reflected as a device proof', () => {
    const b = new BrokerAuthenticator(broker.privateKey, broker.publicKey, device.publicKey);
    const cn = newNonce();
    const bn = newNonce();
    expect(b.verifyDevice(b.brokerProof(cn, bn), cn, bn)).toBe(false);
  });

  it('rejects an impostor broker', () => {
    const fake = generateKeyPair();
    const b = new BrokerAuthenticator(fake.privateKey, broker.publicKey, device.publicKey);
    const d = new DeviceAuthenticator(device.privateKey, device.publicKey, broker.publicKey);
    const cn = newNonce();
    const bn = newNonce();
    expect(d.verifyBroker(b.brokerProof(cn, bn), cn, bn)).toBe(false);
  });

  it('refuses malformed proofs without throwing', () => {
    const b = new BrokerAuthenticator(broker.privateKey, broker.publicKey, device.publicKey);
    expect(b.verifyDevice('', newNonce(), newNonce())).toBe(false);
    expect(b.verifyDevice('AAAA', newNonce(), newNonce())).toBe(false);
  });
});

describe('sharedSecret', () => {
  it('agrees with the pure-JS X25519 in both directions', () => {
    const { x25519 } = jest.requireActual<typeof import('@noble/curves/ed25519')>('@noble/curves/ed25519');
    for (let i = 0; i < 20; i++) {
      const a = generateKeyPair();
      const b = generateKeyPair();
      const native = sharedSecret(a.privateKey, b.publicKey);
      expect(Buffer.from(native)).toEqual(Buffer.from(sharedSecret(b.privateKey, a.publicKey)));
      const js = x25519.getSharedSecret(
        Buffer.from(a.privateKey, 'base64'),
        Buffer.from(b.publicKey, 'base64'),
      );
      expect(Buffer.from(native)).toEqual(Buffer.from(js));
    }
  });

  it('takes raw keys that are views into a larger buffer', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const big = Buffer.alloc(100, 7);
    Buffer.from(a.privateKey, 'base64').copy(big, 10);
    Buffer.from(b.publicKey, 'base64').copy(big, 50);
    const fromViews = sharedSecret(big.subarray(10, 42), new Uint8Array(big.buffer, big.byteOffset + 50, 32));
    expect(Buffer.from(fromViews)).toEqual(Buffer.from(sharedSecret(a.privateKey, b.publicKey)));
  });

  it('refuses a low-order public key', () => {
    const a = generateKeyPair();
    expect(() => sharedSecret(a.privateKey, Buffer.alloc(32).toString('base64'))).toThrow(
      'low-order public key',
    );
  });
});

describe('enrollment proof', () => {
  const device = generateKeyPair();
  const broker = generateKeyPair();
  const at = 1_700_000_000_000;
  const mac = enrollProof(device.privateKey, device.publicKey, broker.publicKey, 'tsk_setup-key-1', at);
  const verify = (over: Partial<{ setupKey: string; at: number; now: number; devicePublic: string }> = {}) =>
    verifyEnrollProof(
      broker.privateKey,
      broker.publicKey,
      over.devicePublic ?? device.publicKey,
      over.setupKey ?? 'tsk_setup-key-1',
      { at: over.at ?? at, mac },
      over.now ?? at + 1_000,
    );

  it('proves the private key to the broker, for this setup key and time only', () => {
    expect(verify()).toBe(true);
    expect(verify({ setupKey: 'tsk_setup-key-2' })).toBe(false);
    expect(verify({ at: at + 1 })).toBe(false);
    expect(verify({ devicePublic: generateKeyPair().publicKey })).toBe(false);
    const other = enrollProof(
      generateKeyPair().privateKey,
      device.publicKey,
      broker.publicKey,
      'tsk_setup-key-1',
      at,
    );
    expect(
      verifyEnrollProof(
        broker.privateKey,
        broker.publicKey,
        device.publicKey,
        'tsk_setup-key-1',
        { at, mac: other },
        at,
      ),
    ).toBe(false);
  });

  it('is refused once it is older (or newer) than the allowed clock skew', () => {
    expect(verify({ now: at + ENROLL_PROOF_MAX_SKEW_MS })).toBe(true);
    expect(verify({ now: at + ENROLL_PROOF_MAX_SKEW_MS + 1 })).toBe(false);
    expect(verify({ now: at - ENROLL_PROOF_MAX_SKEW_MS - 1 })).toBe(false);
  });
});
