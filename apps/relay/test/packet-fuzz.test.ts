import { randomBytes } from 'node:crypto';
// The repo's deterministic mutation generator (truncations, extensions, bit flips, overwrites).
import { mutations, prng } from '../../../packages/portmap/test/support/fuzz';
import { AllocationCore } from '../src/allocation/allocation-core';
import { classifyPacket, PacketKind } from '../src/packet/wireguard-packet';
import { WireGuardPair } from './support/wireguard-pair';

describe('WireGuard packet classification', () => {
  it('accepts exactly the message types and lengths WireGuard sends', () => {
    const header = (type: number, length: number) => {
      const p = new Uint8Array(length);
      p[0] = type;
      return p;
    };
    expect(classifyPacket(header(1, 148))).toBe(PacketKind.initiation);
    expect(classifyPacket(header(2, 92))).toBe(PacketKind.response);
    expect(classifyPacket(header(3, 64))).toBe(PacketKind.cookieReply);
    expect(classifyPacket(header(4, 32))).toBe(PacketKind.transport);
    expect(classifyPacket(header(4, 1452))).toBe(PacketKind.transport); // MTU 1420: not 16-aligned
    for (const [type, length] of [
      [1, 147],
      [1, 149],
      [2, 91],
      [2, 148],
      [3, 65],
      [4, 31],
      [0, 148],
      [5, 64],
      [4, 0],
      [4, 3],
    ] as const) {
      expect(classifyPacket(header(type, length))).toBe(PacketKind.malformed);
    }
    const reserved = header(4, 32);
    reserved[3] = 1;
    expect(classifyPacket(reserved)).toBe(PacketKind.malformed);
    expect(classifyPacket(new Uint8Array(0))).toBe(PacketKind.malformed);
  });
});

describe('relay fuzz: never throws, never forwards the unauthenticated', () => {
  const pair = new WireGuardPair();
  const hs = pair.handshake();

  it('drops random bytes from unbound sources, at every length', () => {
    const core = new AllocationCore({ publicKeys: pair.keys, idleTimeoutMs: 60_000, now: () => 0 });
    const random = prng(1);
    for (let i = 0; i < 5_000; i++) {
      const length = Math.floor(random() * 200);
      const packet = randomBytes(length);
      // Make the interesting lengths likelier: valid type and reserved bytes.
      if (length >= 4 && random() < 0.7) {
        packet[0] = 1 + Math.floor(random() * 4);
        packet.fill(0, 1, 4);
      }
      expect(core.receive('udp', '192.0.2.1', 1 + (i % 50), packet)).toBe(-1);
    }
    expect(core.binding(0)).toBeNull();
    expect(core.binding(1)).toBeNull();
    expect(core.binds).toBe(0);
  });

  it('never binds on a mutated real handshake', () => {
    let t = 0;
    const core = new AllocationCore({ publicKeys: pair.keys, idleTimeoutMs: 60_000, now: () => (t += 1000) });
    let port = 0;
    for (const original of [hs.initiation, hs.response]) {
      const authenticated = original.length - 16; // mac2 is not covered by mac1, by design
      for (const mutated of mutations(original, 3_000, original.length)) {
        const same =
          mutated.length === original.length &&
          Buffer.compare(mutated.subarray(0, authenticated), original.subarray(0, authenticated)) === 0;
        if (same) continue;
        expect(core.receive('udp', '192.0.2.1', 1 + (port++ % 50), mutated)).toBe(-1);
      }
    }
    expect(core.binds).toBe(0);
  });
});
