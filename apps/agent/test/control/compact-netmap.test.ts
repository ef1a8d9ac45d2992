import { deflateRawSync } from 'node:zlib';
import { ALLOW_ALL, MAX_SERVER_FRAME_BYTES, type NetmapMessage } from '@trellis/proto';
import { decodeServerMessage, frameText } from '../../src/control/control-socket';
import { NetmapTracker } from '../../src/control/netmap-tracker';
import { peerOf, selfOf } from '../virtual/fixtures';

const self = selfOf(1, 'laptop', '100.64.0.1');
const a = { ...peerOf(2, 'a', '100.64.0.2'), online: false };
const b = { ...peerOf(3, 'b', '100.64.0.3'), online: true };
const snapshot: NetmapMessage = {
  type: 'netmap',
  serial: 5,
  self,
  peers: [a, b],
  access: [{ peers: [a.id, b.id], in: ALLOW_ALL, out: ALLOW_ALL }],
};

describe('capability 3 on the agent', () => {
  it('a binary frame is a snapshot as raw DEFLATE: inflated and parsed like text', () => {
    const text = JSON.stringify(snapshot);
    expect(frameText(deflateRawSync(text), true)).toBe(text);
    const decoded = decodeServerMessage(frameText(deflateRawSync(text), true));
    expect(decoded.ok && decoded.msg).toEqual(snapshot);
    expect(frameText(Buffer.from(text), false)).toBe(text);
  });

  it('refuses a binary frame that is not DEFLATE or inflates past the limit', () => {
    expect(frameText(Buffer.from('not deflate at all'), true)).toBeNull();
    // 64 MiB of zeros compress to ~64 KiB: a frame well within maxPayload that must not be inflated whole.
    const bomb = deflateRawSync(Buffer.alloc(MAX_SERVER_FRAME_BYTES + 1));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    expect(frameText(bomb, true)).toBeNull();
    const refused = decodeServerMessage(null);
    expect(refused.ok).toBe(false);
  });

  it("a delta's presence lists flip only the peers they name", () => {
    const t = new NetmapTracker();
    t.applySnapshot(snapshot);
    const r = t.applyDelta({
      type: 'delta',
      serial: 6,
      upsert: [],
      remove: [],
      online: [a.id],
      offline: [b.id],
    });
    expect(r.ok).toBe(true);
    const peers = new Map(t.current()!.peers.map((p) => [p.id, p]));
    expect(peers.get(a.id)).toEqual({ ...a, online: true });
    expect(peers.get(b.id)).toEqual({ ...b, online: false });
    // A peer it does not hold is not made up from a presence list.
    t.applyDelta({ type: 'delta', serial: 7, upsert: [], remove: [a.id], online: [a.id] });
    expect(t.current()!.peers.map((p) => p.id)).toEqual([b.id]);
  });
});
