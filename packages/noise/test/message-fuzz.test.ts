import {
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  generateKeyPair,
  INITIATION_OFFSETS,
  mac,
  mac1Key,
  openTransport,
  parseInitiation,
  parseResponse,
  parseTransportHeader,
  RESPONSE_OFFSETS,
  sealTransport,
  tai64n,
} from '@trellis/noise';
import { mutations } from '../../portmap/test/support/fuzz';
import { FUZZ_CASES, FUZZ_SEED } from '../../proto/test/support/json-fuzz';

const initiator = generateKeyPair();
const responder = generateKeyPair();
const init = createInitiation(initiator, responder.publicKey, {
  senderIndex: 7,
  timestamp: tai64n(Date.now()),
});
const consumed = consumeInitiation(responder, init.packet);
if (!consumed.ok) throw new Error('the valid initiation is refused');
const response = createResponse(consumed.state, { senderIndex: 9 });
const session = response.session;
const transport = sealTransport(session, 0n, new TextEncoder().encode('hello over the mesh'));
/**
 * Whether the parts the handshake authenticates are the same. The sender index is not part of the
 * Noise transcript (mac1 is no authenticator: anyone with the public key computes it), so a
 * changed index is accepted, as WireGuard accepts it; the result must then carry that index.
 */
const sameBetween = (a: Uint8Array, b: Uint8Array, from: number, to: number) =>
  a.length === b.length && Buffer.compare(a.subarray(from, to), b.subarray(from, to)) === 0;
const indexAt = (p: Uint8Array, at: number) => Buffer.from(p).readUInt32LE(at);

/** The part mac1 covers, with mac1 recomputed: the mutation reaches the DH and AEAD checks. */
function withMac1(packet: Uint8Array, receiver: Uint8Array, at: number): Uint8Array {
  if (packet.length < at + 16) return packet;
  const out = Uint8Array.from(packet);
  out.set(mac(mac1Key(receiver), out.subarray(0, at)), at);
  return out;
}
/** Mutations past mac1 cost two X25519 each: a share of the cases, the rest stop at mac1. */
const DEEP_SHARE = 200;

describe(`WireGuard message parsers under fuzzing (${FUZZ_CASES} cases each, seed ${FUZZ_SEED})`, () => {
  it('initiations: never throw; only the real one (any mac2) is accepted', () => {
    let accepted = 0;
    let i = 0;
    for (const m of mutations(init.packet, FUZZ_CASES, FUZZ_SEED)) {
      parseInitiation(m);
      const packet = i++ % DEEP_SHARE === 0 ? withMac1(m, responder.publicKey, INITIATION_OFFSETS.mac1) : m;
      const r = consumeInitiation(responder, packet);
      if (!r.ok) continue;
      accepted++;
      if (!sameBetween(packet, init.packet, INITIATION_OFFSETS.ephemeral, INITIATION_OFFSETS.mac1)) {
        throw new Error('accepted a changed initiation');
      }
      expect(r.senderIndex).toBe(indexAt(packet, INITIATION_OFFSETS.senderIndex));
    }
    expect(i).toBeGreaterThanOrEqual(FUZZ_CASES);
    expect(accepted).toBeLessThan(i);
  });

  it('responses: never throw; only the real one (any mac2) is accepted', () => {
    let i = 0;
    for (const m of mutations(response.packet, FUZZ_CASES, FUZZ_SEED + 1)) {
      parseResponse(m);
      const packet = i++ % DEEP_SHARE === 0 ? withMac1(m, initiator.publicKey, RESPONSE_OFFSETS.mac1) : m;
      const r = consumeResponse(init.state, packet);
      if (!r.ok) continue;
      if (!sameBetween(packet, response.packet, RESPONSE_OFFSETS.receiverIndex, RESPONSE_OFFSETS.mac1)) {
        throw new Error('accepted a changed response');
      }
      expect(r.session.remoteIndex).toBe(indexAt(packet, RESPONSE_OFFSETS.senderIndex));
    }
    expect(i).toBeGreaterThanOrEqual(FUZZ_CASES);
  });

  it('transport messages: never throw; nothing but the sealed packet opens', () => {
    let i = 0;
    for (const m of mutations(transport, FUZZ_CASES, FUZZ_SEED + 2)) {
      parseTransportHeader(m);
      // Opening runs ChaCha20-Poly1305 over up to 2 KB in JavaScript: every tenth case.
      if (i++ % 10 !== 0) continue;
      const opened = openTransport(session, m);
      if (opened && Buffer.compare(m, transport) !== 0) throw new Error('opened a changed transport message');
    }
    expect(i).toBeGreaterThanOrEqual(FUZZ_CASES);
  });
});
