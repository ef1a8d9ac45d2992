import { createHmac, getHashes } from 'node:crypto';
import {
  compareTai64n,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  generateKeyPair,
  handshakeMac1Valid,
  hmacBlake2s,
  INITIATION_OFFSETS,
  initiationMac1Valid,
  mac,
  mac1Key,
  openTransport,
  parseInitiation,
  parseResponse,
  parseTransportHeader,
  RESPONSE_OFFSETS,
  ReplayWindow,
  sealTransport,
  tai64n,
  tai64nToEpochMilliseconds,
} from '@trellis/noise';

const initiator = generateKeyPair();
const responder = generateKeyPair();

function handshake(timestamp = tai64n(Date.now())) {
  const init = createInitiation(initiator, responder.publicKey, { senderIndex: 0x11223344, timestamp });
  const consumed = consumeInitiation(responder, init.packet);
  if (!consumed.ok) throw new Error(`initiation refused: ${consumed.reason}`);
  const response = createResponse(consumed.state, { senderIndex: 0x55667788 });
  const done = consumeResponse(init.state, response.packet);
  if (!done.ok) throw new Error(`response refused: ${done.reason}`);
  return { init, consumed, response, initiatorSession: done.session, responderSession: response.session };
}

/** Recomputes mac1 as anyone who knows the responder's public key can, to reach the inner checks. */
function withValidMac1(packet: Uint8Array, receiverPublicKey: Uint8Array, mac1At: number): Uint8Array {
  const out = packet.slice();
  out.set(mac(mac1Key(receiverPublicKey), out.subarray(0, mac1At)), mac1At);
  return out;
}

describe('handshake round trip', () => {
  it('recovers the initiator key, timestamp and index, and both sides derive matching keys', () => {
    const stamp = tai64n(Date.now());
    const { init, consumed, initiatorSession, responderSession } = handshake(stamp);
    expect(init.packet).toHaveLength(148);
    if (!consumed.ok) throw new Error('unreachable');
    expect(Buffer.from(consumed.initiatorStatic)).toEqual(Buffer.from(initiator.publicKey));
    expect(Buffer.from(consumed.timestamp)).toEqual(Buffer.from(stamp));
    expect(consumed.senderIndex).toBe(0x11223344);
    expect(Buffer.from(initiatorSession.sendKey)).toEqual(Buffer.from(responderSession.receiveKey));
    expect(Buffer.from(initiatorSession.receiveKey)).toEqual(Buffer.from(responderSession.sendKey));
    expect(initiatorSession.remoteIndex).toBe(0x55667788);
    expect(responderSession.remoteIndex).toBe(0x11223344);
  });

  it('authenticates keepalives and data in both directions', () => {
    const { initiatorSession, responderSession } = handshake();
    const keepalive = sealTransport(initiatorSession, 0n);
    expect(keepalive).toHaveLength(32);
    expect(parseTransportHeader(keepalive)).toEqual({ receiverIndex: 0x55667788, counter: 0n });
    expect(openTransport(responderSession, keepalive)).toEqual({ counter: 0n, payload: new Uint8Array(0) });
    const data = sealTransport(responderSession, 7n, Uint8Array.of(1, 2, 3));
    expect(openTransport(initiatorSession, data)?.payload).toEqual(Uint8Array.of(1, 2, 3));
    // A session's own outgoing packets are not addressed to it, and a foreign session cannot open them.
    expect(openTransport(initiatorSession, keepalive)).toBeNull();
    expect(openTransport(handshake().responderSession, keepalive)).toBeNull();
  });

  it('refuses a transport message with any byte flipped', () => {
    const { initiatorSession, responderSession } = handshake();
    const keepalive = sealTransport(initiatorSession, 3n);
    for (let i = 0; i < keepalive.length; i++) {
      const bad = keepalive.slice();
      bad[i]! ^= 0x01;
      expect(openTransport(responderSession, bad)).toBeNull();
    }
  });
});

describe('initiation tampering', () => {
  const { init } = handshake();

  it('rejects every flipped bit in the part mac1 covers (bytes 0..115)', () => {
    for (let i = 0; i < INITIATION_OFFSETS.mac2; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = init.packet.slice();
        bad[i]! ^= bit;
        const result = consumeInitiation(responder, bad);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.reason).toBe(i < 4 ? 'malformed' : 'bad-mac1');
      }
    }
  });

  it('rejects tampered ephemeral, static and timestamp even with a recomputed mac1', () => {
    const fields = [
      ['ephemeral', INITIATION_OFFSETS.ephemeral, 32],
      ['encryptedStatic', INITIATION_OFFSETS.encryptedStatic, 48],
      ['encryptedTimestamp', INITIATION_OFFSETS.encryptedTimestamp, 28],
    ] as const;
    for (const [, at, length] of fields) {
      for (let i = at; i < at + length; i++) {
        const bad = init.packet.slice();
        bad[i]! ^= 0x04;
        const result = consumeInitiation(
          responder,
          withValidMac1(bad, responder.publicKey, INITIATION_OFFSETS.mac1),
        );
        expect(result).toEqual({ ok: false, reason: expect.stringMatching(/decrypt-failed|malformed/) });
      }
    }
  });

  it('offers the mac1 check alone, for cheap filtering before any X25519 work', () => {
    expect(initiationMac1Valid(responder.publicKey, init.packet)).toBe(true);
    expect(initiationMac1Valid(generateKeyPair().publicKey, init.packet)).toBe(false);
    const bad = init.packet.slice();
    bad[50]! ^= 1;
    expect(initiationMac1Valid(responder.publicKey, bad)).toBe(false);
    expect(initiationMac1Valid(responder.publicKey, init.packet.subarray(0, 100))).toBe(false);
  });

  it('checks mac1 of initiations and responses alike, keyed by the receiver', () => {
    const consumed = consumeInitiation(responder, init.packet);
    if (!consumed.ok) throw new Error('initiation refused');
    const response = createResponse(consumed.state, { senderIndex: 7 }).packet;
    expect(handshakeMac1Valid(responder.publicKey, init.packet)).toBe(true);
    expect(handshakeMac1Valid(initiator.publicKey, init.packet)).toBe(false);
    expect(handshakeMac1Valid(initiator.publicKey, response)).toBe(true);
    expect(handshakeMac1Valid(responder.publicKey, response)).toBe(false);
    for (const packet of [init.packet, response]) {
      const flipped = packet.slice();
      flipped[20]! ^= 1;
      expect(handshakeMac1Valid(responder.publicKey, flipped)).toBe(false);
      expect(handshakeMac1Valid(initiator.publicKey, flipped)).toBe(false);
      const reserved = packet.slice();
      reserved[2] = 1;
      expect(handshakeMac1Valid(responder.publicKey, reserved)).toBe(false);
      expect(handshakeMac1Valid(initiator.publicKey, reserved)).toBe(false);
    }
    // A response's bytes under an initiation's type byte (and the reverse) are not handshakes.
    const retyped = response.slice();
    retyped[0] = 1;
    expect(handshakeMac1Valid(initiator.publicKey, retyped)).toBe(false);
    expect(handshakeMac1Valid(responder.publicKey, new Uint8Array(0))).toBe(false);
  });

  it('ignores mac2, as WireGuard does when it has sent no cookie', () => {
    const other = init.packet.slice();
    other[INITIATION_OFFSETS.mac2]! ^= 0xff;
    expect(consumeInitiation(responder, other).ok).toBe(true);
  });

  it('refuses an initiation meant for another responder', () => {
    const stranger = generateKeyPair();
    expect(consumeInitiation(stranger, init.packet)).toEqual({ ok: false, reason: 'bad-mac1' });
    // Same public key with a wrong private key: mac1 passes, decryption cannot.
    const impostor = { privateKey: stranger.privateKey, publicKey: responder.publicKey };
    expect(consumeInitiation(impostor, init.packet)).toEqual({ ok: false, reason: 'decrypt-failed' });
  });

  it('refuses a low-order ephemeral key', () => {
    const bad = init.packet.slice();
    bad.fill(0, INITIATION_OFFSETS.ephemeral, INITIATION_OFFSETS.ephemeral + 32);
    const result = consumeInitiation(
      responder,
      withValidMac1(bad, responder.publicKey, INITIATION_OFFSETS.mac1),
    );
    expect(result).toEqual({ ok: false, reason: 'malformed' });
  });

  it('parses strictly: exact length, type 1, zero reserved bytes', () => {
    expect(parseInitiation(init.packet)?.senderIndex).toBe(0x11223344);
    expect(parseInitiation(init.packet.subarray(0, 147))).toBeNull();
    expect(parseInitiation(new Uint8Array([...init.packet, 0]))).toBeNull();
    for (const [i, value] of [
      [0, 2],
      [1, 1],
      [2, 1],
      [3, 1],
    ] as const) {
      const bad = init.packet.slice();
      bad[i] = value;
      expect(parseInitiation(bad)).toBeNull();
    }
    expect(parseInitiation(new Uint8Array(0))).toBeNull();
  });
});

describe('response tampering', () => {
  it('rejects every flipped bit of the response before mac2', () => {
    const init = createInitiation(initiator, responder.publicKey, { senderIndex: 9 });
    const consumed = consumeInitiation(responder, init.packet);
    if (!consumed.ok) throw new Error('unreachable');
    const { packet } = createResponse(consumed.state, { senderIndex: 10 });
    expect(packet).toHaveLength(92);
    expect(parseResponse(packet)).toMatchObject({ senderIndex: 10, receiverIndex: 9 });
    expect(consumeResponse(init.state, packet).ok).toBe(true);
    for (let i = 0; i < RESPONSE_OFFSETS.mac2; i++) {
      const bad = packet.slice();
      bad[i]! ^= 0x10;
      expect(consumeResponse(init.state, bad).ok).toBe(false);
    }
    // With mac1 recomputed, the ephemeral and the empty box are still authenticated.
    for (let i = RESPONSE_OFFSETS.ephemeral; i < RESPONSE_OFFSETS.mac1; i++) {
      const bad = packet.slice();
      bad[i]! ^= 0x10;
      const forged = withValidMac1(bad, initiator.publicKey, RESPONSE_OFFSETS.mac1);
      expect(consumeResponse(init.state, forged).ok).toBe(false);
    }
  });
});

describe('TAI64N', () => {
  it('encodes UTC seconds with the TAI64 label and whitened nanoseconds, ordered bytewise', () => {
    const stamp = tai64n(1_700_000_000_123.456);
    expect(Buffer.from(stamp.subarray(0, 8)).toString('hex')).toBe(
      (0x400000000000000an + 1_700_000_000n).toString(16).padStart(16, '0'),
    );
    const nanos = Buffer.from(stamp).readUInt32BE(8);
    expect(nanos & 0xffffff).toBe(0);
    expect(nanos).toBeLessThanOrEqual(123_456_000);
    expect(123_456_000 - nanos).toBeLessThan(0x1000000);
    expect(Math.abs(tai64nToEpochMilliseconds(stamp) - 1_700_000_000_123)).toBeLessThan(17);
    expect(compareTai64n(tai64n(1000), tai64n(2000))).toBe(-1);
    expect(compareTai64n(tai64n(2000), tai64n(1000))).toBe(1);
    expect(compareTai64n(tai64n(2000), tai64n(2001))).toBe(0); // inside one whitening step
  });
});

describe('primitives', () => {
  it('HMAC-BLAKE2s matches OpenSSL', () => {
    if (!getHashes().includes('blake2s256')) throw new Error('OpenSSL lacks blake2s256');
    const key = Buffer.from('a key that is longer than nothing');
    const data = Buffer.from('some input');
    expect(Buffer.from(hmacBlake2s(key, data))).toEqual(createHmac('blake2s256', key).update(data).digest());
  });
});

describe('ReplayWindow', () => {
  it('accepts each counter once, allows reordering inside the window, refuses too old', () => {
    const w = new ReplayWindow(64n);
    expect(w.accept(0n)).toBe(true);
    expect(w.accept(0n)).toBe(false);
    expect(w.accept(5n)).toBe(true);
    expect(w.accept(3n)).toBe(true);
    expect(w.accept(3n)).toBe(false);
    expect(w.accept(100n)).toBe(true);
    expect(w.accept(36n)).toBe(false); // 64 behind the highest
    expect(w.accept(37n)).toBe(true);
    expect(w.accept(37n)).toBe(false);
    expect(w.accept(1000n)).toBe(true);
    expect(w.accept(999n)).toBe(true);
  });
});
