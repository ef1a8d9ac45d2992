import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALLOW_ALL, type NetmapMessage } from '@trellis/proto';
import { NetmapTracker, rulesOf } from '../../src/control/netmap-tracker';
import { netmapFromSaved, STATE_FILES, StateStore, savedNetmapOf } from '../../src/state/state-store';
import { id, peerOf, selfOf, virtualOf } from './fixtures';

const self = selfOf(1, 'laptop', '100.64.0.1');
const gateway = peerOf(2, 'gw', '100.64.0.2');
const printer = virtualOf(10, 'printer', '100.64.0.10', 2);
const camera = virtualOf(11, 'camera', '100.64.0.11', 2);
const web = [{ proto: 'tcp' as const, ports: [[631, 631]] as [number, number][] }];

function snapshot(): NetmapMessage {
  return {
    type: 'netmap',
    serial: 5,
    self,
    peers: [gateway],
    access: [
      { peers: [gateway.id], in: [], out: ALLOW_ALL },
      { peers: [printer.id], in: [{ proto: 'icmp' }], out: web },
    ],
    virtual: [printer],
  };
}

describe('NetmapTracker with virtual devices', () => {
  it('takes them from a snapshot, upserts them from a delta and removes them with `remove`', () => {
    const t = new NetmapTracker();
    const first = t.applySnapshot(snapshot());
    expect(first.virtual).toEqual([printer]);
    expect(rulesOf(first, printer.id)).toEqual({ in: [{ proto: 'icmp' }], out: web });

    const moved = { ...printer, address: '100.64.0.12' };
    const added = t.applyDelta({
      type: 'delta',
      serial: 6,
      upsert: [],
      remove: [],
      virtualUpsert: [moved, camera],
      access: [{ peers: [camera.id], in: [], out: ALLOW_ALL }],
    });
    expect(added.ok && added.netmap.virtual).toEqual([moved, camera]);
    expect(added.ok && rulesOf(added.netmap, camera.id).out).toEqual(ALLOW_ALL);

    const removed = t.applyDelta({ type: 'delta', serial: 7, upsert: [], remove: [printer.id] });
    expect(removed.ok && removed.netmap.virtual).toEqual([camera]);
    // Its access goes with it, as a removed peer's does.
    expect(removed.ok && rulesOf(removed.netmap, printer.id)).toEqual({ in: [], out: [] });
    expect(removed.ok && removed.netmap.peers).toEqual([gateway]);
  });

  it('a new snapshot replaces them all; one without `virtual` leaves none', () => {
    const t = new NetmapTracker();
    t.applySnapshot(snapshot());
    const { virtual: _, ...older } = snapshot();
    expect(t.applySnapshot({ ...older, serial: 9 }).virtual).toEqual([]);
  });
});

describe('the saved netmap with virtual devices', () => {
  let dir: string;
  let store: StateStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-vd-state-'));
    store = new StateStore(dir);
    await store.init();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('persists them with their access, and brings the same netmap back', async () => {
    const netmap = new NetmapTracker().applySnapshot(snapshot());
    await store.saveNetmap(savedNetmapOf(netmap));
    const back = netmapFromSaved((await store.loadNetmap())!);
    expect(back.virtual).toEqual([printer]);
    expect(rulesOf(back, printer.id)).toEqual(rulesOf(netmap, printer.id));
    expect(back).toEqual(netmap);
  });

  it('loads a file saved before virtual devices (no `virtual`) with none', async () => {
    const old = {
      serial: 3,
      self,
      peers: [gateway],
      access: [{ peers: [id(2)], in: [], out: ALLOW_ALL }],
      savedAt: '2025-06-01T00:00:00.000Z',
    };
    writeFileSync(join(dir, STATE_FILES.netmap), `${JSON.stringify(old)}\n`);
    const back = netmapFromSaved((await store.loadNetmap())!);
    expect(back.virtual).toEqual([]);
    expect(back.peers).toEqual([gateway]);
  });
});
