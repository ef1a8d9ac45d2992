import { randomUUID } from 'node:crypto';
import {
  ClientMessage,
  type DevicePathsEvent,
  decodeBrokerEvent,
  encodeBrokerEvent,
  MAX_BROKER_EVENT_BYTES,
  MAX_PATH_AGE_MS,
  MAX_PATH_STATES,
  PathChangedEvent,
  PathStateMessage,
  type PeerPathState,
  TopologyResponse,
} from '../src';

function state(extra: Partial<PeerPathState> = {}): PeerPathState {
  return { peerId: randomUUID(), path: 'direct', forMs: 1200, ...extra };
}

describe('path-state (agent → broker)', () => {
  it('is a control message: a full report, a delta, an empty full report', () => {
    const msgs = [
      { type: 'path-state', full: true, paths: [state(), state({ path: 'relayed', relay: 'relay-1' })] },
      { type: 'path-state', paths: [state({ path: 'connecting' }), state({ path: 'none', forMs: 0 })] },
      { type: 'path-state', full: true, paths: [] },
    ];
    for (const m of msgs) {
      expect(PathStateMessage.parse(m)).toEqual(m);
      expect(ClientMessage.safeParse(m).success).toBe(true);
    }
  });

  it('refuses unknown kinds and fields, bad ids, bad relay names, negative or absurd ages, too many peers', () => {
    const bad: unknown[] = [
      { type: 'path-state', paths: [state({ path: 'teleport' as never })] },
      { type: 'path-state', paths: [{ ...state(), extra: 1 }] },
      { type: 'path-state', paths: [state()], extra: 1 },
      { type: 'path-state', paths: [state({ peerId: 'not-a-uuid' })] },
      { type: 'path-state', paths: [state({ path: 'relayed', relay: 'Relay One\n' })] },
      { type: 'path-state', paths: [state({ forMs: -1 })] },
      { type: 'path-state', paths: [state({ forMs: 1.5 })] },
      { type: 'path-state', paths: [state({ forMs: MAX_PATH_AGE_MS + 1 })] },
      { type: 'path-state', paths: Array.from({ length: MAX_PATH_STATES + 1 }, () => state()) },
      { type: 'path-state' },
    ];
    for (const m of bad) {
      expect(PathStateMessage.safeParse(m).success).toBe(false);
      expect(ClientMessage.safeParse(m).success).toBe(false);
    }
  });

  it('a full report of the most peers with the longest relay names fits one broker event', () => {
    const event: DevicePathsEvent = {
      kind: 'device-paths',
      accountId: randomUUID(),
      deviceId: randomUUID(),
      full: true,
      paths: Array.from({ length: MAX_PATH_STATES }, () =>
        state({ path: 'relayed', relay: 'r'.repeat(63), forMs: MAX_PATH_AGE_MS }),
      ),
      at: Date.now(),
    };
    const payload = encodeBrokerEvent(event);
    expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(MAX_BROKER_EVENT_BYTES);
    expect(decodeBrokerEvent(payload)).toEqual({ ok: true, event });
  });
});

describe('topology (dashboard)', () => {
  const a = randomUUID();
  const b = randomUUID();
  it('parses a topology and a path event', () => {
    const topo = {
      nodes: [
        {
          id: a,
          name: 'laptop',
          address: '100.64.0.2',
          online: true,
          owner: 'ann@example.com',
          peerOnly: false,
        },
        { id: b, name: 'server', address: '100.64.0.3', online: true, owner: null, peerOnly: true },
      ],
      edges: [{ a, b, kind: 'relayed', relay: 'relay-1', since: new Date().toISOString() }],
    };
    expect(TopologyResponse.parse(topo)).toEqual(topo);
    const ev = { edges: [], gone: [{ a, b }] };
    expect(PathChangedEvent.parse(ev)).toEqual(ev);
  });

  it('refuses an edge of another kind or without its devices', () => {
    const since = new Date().toISOString();
    expect(
      TopologyResponse.safeParse({ nodes: [], edges: [{ a, b, kind: 'none', relay: null, since }] }).success,
    ).toBe(false);
    expect(
      PathChangedEvent.safeParse({ edges: [{ a, kind: 'direct', relay: null, since }], gone: [] }).success,
    ).toBe(false);
  });
});
