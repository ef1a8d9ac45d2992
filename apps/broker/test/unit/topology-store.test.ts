import { randomUUID } from 'node:crypto';
import type { BrokerEvent, DevicePathsEvent, PathStateMessage } from '@trellis/proto';
import pino from 'pino';
import { InProcessEventBus } from '../../src/events/event-bus';
import { pathStateIntake } from '../../src/topology/path-state-intake';
import { pairKey, TopologyStore } from '../../src/topology/topology-store';

const account = randomUUID();
const [A, B, C] = [randomUUID(), randomUUID(), randomUUID()];

function paths(
  deviceId: string,
  list: DevicePathsEvent['paths'],
  full = false,
  at = 1_000_000,
): DevicePathsEvent {
  return { kind: 'device-paths', accountId: account, deviceId, full, paths: list, at };
}

function store() {
  const s = new TopologyStore();
  const changes: string[][] = [];
  s.onChange((_, pairs) => changes.push([...pairs]));
  return { s, changes };
}

describe('TopologyStore (every device’s reported paths)', () => {
  it('makes an edge of the better side, since the earlier of two that agree', () => {
    const { s, changes } = store();
    s.onEvent(paths(A, [{ peerId: B, path: 'connecting', forMs: 0 }]));
    expect(s.edges(account)).toEqual([
      expect.objectContaining({ kind: 'connecting', relay: null, a: [A, B].sort()[0] }),
    ]);
    s.onEvent(paths(B, [{ peerId: A, path: 'relayed', relay: 'r1', forMs: 500 }]));
    expect(s.edges(account)).toEqual([expect.objectContaining({ kind: 'relayed', relay: 'r1' })]);
    s.onEvent(paths(A, [{ peerId: B, path: 'relayed', relay: 'r1', forMs: 2_000 }]));
    expect(s.edge(account, pairKey(A, B))!.since).toBe(new Date(1_000_000 - 2_000).toISOString());
    expect(changes).toEqual([[pairKey(A, B)], [pairKey(A, B)], [pairKey(A, B)]]);
  });

  it('a path reported again keeps its start; none takes a report back', () => {
    const { s } = store();
    s.onEvent(paths(A, [{ peerId: B, path: 'direct', forMs: 0 }], true, 1_000));
    s.onEvent(paths(A, [{ peerId: B, path: 'direct', forMs: 0 }], true, 9_000));
    expect(s.edge(account, pairKey(A, B))!.since).toBe(new Date(1_000).toISOString());
    s.onEvent(paths(A, [{ peerId: B, path: 'none', forMs: 0 }]));
    expect(s.edges(account)).toEqual([]);
  });

  it('a full report replaces the device’s earlier ones', () => {
    const { s, changes } = store();
    s.onEvent(
      paths(A, [
        { peerId: B, path: 'direct', forMs: 0 },
        { peerId: C, path: 'direct', forMs: 0 },
      ]),
    );
    s.onEvent(paths(A, [{ peerId: C, path: 'connecting', forMs: 0 }], true));
    expect(s.edges(account)).toEqual([expect.objectContaining({ kind: 'connecting' })]);
    expect(changes[1]!.sort()).toEqual([pairKey(A, B), pairKey(A, C)].sort());
  });

  it('a device offline or removed takes its paths with it, both its reports and its peers’ about it', () => {
    const { s } = store();
    s.onEvent(
      paths(A, [
        { peerId: B, path: 'direct', forMs: 0 },
        { peerId: C, path: 'direct', forMs: 0 },
      ]),
    );
    s.onEvent(paths(C, [{ peerId: B, path: 'relayed', relay: 'r1', forMs: 0 }]));
    const offline = {
      kind: 'device-upsert',
      accountId: account,
      serial: 1,
      device: { id: B, online: false },
    };
    s.onEvent(offline as unknown as BrokerEvent);
    expect(s.edges(account)).toEqual([expect.objectContaining({ a: [A, C].sort()[0], b: [A, C].sort()[1] })]);
    s.onEvent({ kind: 'device-remove', accountId: account, serial: 2, deviceId: A });
    expect(s.edges(account)).toEqual([]);
  });

  it('keeps accounts apart', () => {
    const { s } = store();
    s.onEvent(paths(A, [{ peerId: B, path: 'direct', forMs: 0 }]));
    expect(s.edges(randomUUID())).toEqual([]);
  });
});

describe('pathStateIntake (a device’s report, checked against its netmap)', () => {
  it('publishes the peers the device has, drops the rest, and lets `none` through', async () => {
    const bus = new InProcessEventBus();
    const seen: BrokerEvent[] = [];
    bus.subscribe((e) => seen.push(e));
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => warnings.push(JSON.parse(l).msg) });
    const intake = pathStateIntake({
      peersOf: (id) => (id === A ? { accountId: account, canSee: (p) => p === B } : null),
      bus,
      logger,
      now: () => 42,
    });
    const msg: PathStateMessage = {
      type: 'path-state',
      full: true,
      paths: [
        { peerId: B, path: 'direct', forMs: 1 },
        { peerId: C, path: 'direct', forMs: 1 },
        { peerId: C, path: 'none', forMs: 0 },
      ],
    };
    intake(A, msg);
    // Not connected here: nothing.
    intake(C, msg);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([
      {
        kind: 'device-paths',
        accountId: account,
        deviceId: A,
        full: true,
        paths: [
          { peerId: B, path: 'direct', forMs: 1 },
          { peerId: C, path: 'none', forMs: 0 },
        ],
        at: 42,
      },
    ]);
    expect(warnings).toEqual(['path state about devices that are not its peers dropped']);
  });
});
