import fc from 'fast-check';
import {
  chooseRelayTcpProtocol,
  decodeBatchFrame,
  encodeBatchFrames,
  RELAY_TCP_BATCH_PROTOCOL,
  RELAY_TCP_MAX_BATCH_FRAME,
  RELAY_TCP_MAX_PACKET,
  RELAY_TCP_PACKET_PROTOCOL,
  RelayFrameWriter,
} from '../src';

const packet = fc.uint8Array({ minLength: 1, maxLength: 3000 });

function decodeAll(frames: readonly Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  for (const frame of frames) {
    const ok = decodeBatchFrame(frame, (p) => out.push(Buffer.from(p)));
    if (!ok) throw new Error('malformed frame');
  }
  return out;
}

describe('relay TCP fallback framing', () => {
  it('any sequence of packets comes back whole and in order, in frames no larger than the limit', () => {
    fc.assert(
      fc.property(
        fc.array(packet, { maxLength: 60 }),
        fc.integer({ min: 3002, max: 70_000 }),
        (packets, max) => {
          const frames = encodeBatchFrames(packets, max);
          for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(max);
          expect(decodeAll(frames)).toEqual(packets.map((p) => Buffer.from(p)));
        },
      ),
    );
  });

  it('carries the largest packet alone in the largest frame, and splits before it', () => {
    const big = new Uint8Array(RELAY_TCP_MAX_PACKET).fill(7);
    const frames = encodeBatchFrames([Uint8Array.of(1), big, Uint8Array.of(2)]);
    expect(frames.map((f) => f.length)).toEqual([3, RELAY_TCP_MAX_BATCH_FRAME, 3]);
    expect(decodeAll(frames).map((p) => p.length)).toEqual([1, RELAY_TCP_MAX_PACKET, 1]);
    expect(() => encodeBatchFrames([new Uint8Array(0)])).toThrow(RangeError);
    expect(() => encodeBatchFrames([new Uint8Array(RELAY_TCP_MAX_PACKET + 1)])).toThrow(RangeError);
  });

  it('refuses a frame that is empty, has a zero length, or runs past its end', () => {
    const got: number[] = [];
    const decode = (bytes: number[]) => decodeBatchFrame(Uint8Array.from(bytes), (p) => got.push(p.length));
    expect(decode([])).toBe(false);
    expect(decode([0, 0])).toBe(false);
    expect(decode([0, 3, 1, 2])).toBe(false);
    expect(decode([0, 1, 9, 0])).toBe(false); // a whole packet, then half a length
    expect(got).toEqual([1]); // what came before the bad length was delivered
    expect(decode([0, 2, 1, 2, 0, 1, 3])).toBe(true);
    expect(got).toEqual([1, 2, 1]);
  });

  it('the relay picks batching when offered, per-packet framing otherwise', () => {
    expect(chooseRelayTcpProtocol(new Set([RELAY_TCP_PACKET_PROTOCOL, RELAY_TCP_BATCH_PROTOCOL]))).toBe(
      RELAY_TCP_BATCH_PROTOCOL,
    );
    expect(chooseRelayTcpProtocol(new Set([RELAY_TCP_PACKET_PROTOCOL]))).toBe(RELAY_TCP_PACKET_PROTOCOL);
    expect(chooseRelayTcpProtocol(new Set(['something-else']))).toBe(false);
  });
});

describe('RelayFrameWriter', () => {
  function sink() {
    const log: string[] = [];
    const sent: Uint8Array[] = [];
    const scheduled: Array<() => void> = [];
    return {
      log,
      sent,
      scheduled,
      sink: {
        send: (m: Uint8Array) => {
          sent.push(m);
          log.push(`send ${m.length}`);
        },
        cork: () => log.push('cork'),
        uncork: () => log.push('uncork'),
        schedule: (f: () => void) => scheduled.push(f),
      },
    };
  }

  it('batched: a turn’s packets leave as one message at the end of the turn', () => {
    const s = sink();
    const w = new RelayFrameWriter(s.sink, true);
    w.write(Uint8Array.of(1, 2));
    w.write(Uint8Array.of(3));
    expect(w.pendingBytes).toBe(3);
    expect(s.sent).toEqual([]);
    expect(s.scheduled).toHaveLength(1); // one flush per turn, however many packets
    s.scheduled.shift()!();
    expect(s.log).toEqual(['send 7']);
    expect(decodeAll(s.sent)).toEqual([Buffer.of(1, 2), Buffer.of(3)]);
    expect(w.pendingBytes).toBe(0);
    w.write(Uint8Array.of(4)); // the next turn schedules again
    expect(s.scheduled).toHaveLength(1);
  });

  it('per-packet: one message each, all inside one cork (one socket write)', () => {
    const s = sink();
    const w = new RelayFrameWriter(s.sink, false);
    for (const n of [1, 2, 3]) w.write(new Uint8Array(n).fill(n));
    s.scheduled.shift()!();
    expect(s.log).toEqual(['cork', 'send 1', 'send 2', 'send 3', 'uncork']);
  });

  it('property: any packets written over any turns arrive in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(packet, { maxLength: 8 }), { maxLength: 10 }),
        fc.boolean(),
        (turns, batched) => {
          const s = sink();
          const w = new RelayFrameWriter(s.sink, batched);
          for (const turn of turns) {
            for (const p of turn) w.write(p);
            while (s.scheduled.length > 0) s.scheduled.shift()!();
          }
          const got = batched ? decodeAll(s.sent) : s.sent.map((m) => Buffer.from(m));
          expect(got).toEqual(turns.flat().map((p) => Buffer.from(p)));
        },
      ),
    );
  });

  it('clear forgets what is held; a flush already scheduled then sends nothing', () => {
    const s = sink();
    const w = new RelayFrameWriter(s.sink, true);
    w.write(Uint8Array.of(1));
    w.clear();
    expect(w.pendingBytes).toBe(0);
    s.scheduled.shift()!();
    expect(s.sent).toEqual([]);
  });
});
