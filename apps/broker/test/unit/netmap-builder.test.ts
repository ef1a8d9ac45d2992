import { randomUUID } from 'node:crypto';
import { DeltaMessage, NetmapMessage, ServerMessage } from '@trellis/proto';
import { AccountNetmap, type ChangeBatch } from '../../src/domain/netmap-builder';
import { deviceState as device } from '../support/device-state';

/** The frame of a batch for a viewer, which must be a delta. */
function deltaOf(m: AccountNetmap, batch: ChangeBatch, viewerId: string, serial: number): string {
  const out = m.batchFrame(batch, viewerId, serial);
  if (out?.type !== 'delta') throw new Error(`expected a delta, got ${out?.type}`);
  return out.frame;
}

describe('AccountNetmap', () => {
  const a = device('a', '100.64.0.1');
  const b = device('b', '100.64.0.2');
  const c = device('c', '100.64.0.3');

  function build() {
    const m = new AccountNetmap('acme', 'trellis.internal', 10);
    for (const d of [a, b, c]) m.upsert(d);
    m.takeChanges();
    return m;
  }

  it('snapshot: self plus every other device of the account, schema-valid', () => {
    const m = build();
    const snap = NetmapMessage.parse(JSON.parse(m.snapshotFrame(a.id, 10)!));
    expect(snap.serial).toBe(10);
    expect(snap.self).toMatchObject({
      id: a.id,
      name: 'a',
      dnsName: 'a.acme.trellis.internal',
      address: '100.64.0.1',
    });
    expect(snap.peers.map((p) => p.id).sort()).toEqual([b.id, c.id].sort());
    expect(snap.peers.find((p) => p.id === b.id)).toMatchObject({
      allowedIps: ['100.64.0.2/32'],
      dnsName: 'b.acme.trellis.internal',
      publicKey: b.publicKey,
    });
  });

  it('has no snapshot for a device it does not hold (another account)', () => {
    expect(build().snapshotFrame(randomUUID(), 1)).toBeUndefined();
  });

  it('coalesces several changes to one device into one upsert', () => {
    const m = build();
    m.upsert({ ...b, online: true }, 11);
    m.upsert({ ...b, online: true, endpoints: ['192.0.2.1:51820'] }, 12);
    const batch = m.takeChanges();
    const delta = DeltaMessage.parse(JSON.parse(deltaOf(m, batch, a.id, 11)));
    expect(delta.upsert).toHaveLength(1);
    expect(delta.upsert[0]).toMatchObject({ id: b.id, online: true, endpoints: ['192.0.2.1:51820'] });
    expect(delta.remove).toEqual([]);
    expect(m.serial).toBe(12);
  });

  it('a device is not told about its own change', () => {
    const m = build();
    m.upsert({ ...b, online: true });
    const batch = m.takeChanges();
    expect(m.batchFrame(batch, b.id, 1)?.frame).toBeUndefined();
    expect(m.batchFrame(batch, a.id, 1)?.frame).toBeDefined();
  });

  it('a renamed device is told its new name (its self), and its peers the new peer', () => {
    const m = build();
    m.upsert({ ...b, name: 'bee' }, 11);
    const batch = m.takeChanges();
    const own = DeltaMessage.parse(JSON.parse(deltaOf(m, batch, b.id, 11)));
    expect(own.self).toMatchObject({ id: b.id, name: 'bee', dnsName: 'bee.acme.trellis.internal' });
    expect(own.upsert).toEqual([]);
    const seen = DeltaMessage.parse(JSON.parse(deltaOf(m, batch, a.id, 11)));
    expect(seen.upsert[0]).toMatchObject({ id: b.id, name: 'bee' });
    expect(seen.self).toBeUndefined();
  });

  it('upsert then remove in one window leaves only the removal', () => {
    const m = build();
    m.upsert({ ...c, online: true });
    m.remove(c.id);
    const delta = DeltaMessage.parse(JSON.parse(deltaOf(m, m.takeChanges(), a.id, 1)));
    expect(delta.upsert).toEqual([]);
    expect(delta.remove).toEqual([c.id]);
    expect(m.snapshotFrame(c.id, 1)).toBeUndefined();
  });

  it('an unchanged upsert produces no change', () => {
    const m = build();
    m.upsert({ ...a });
    expect(m.pendingKind()).toBe('none');
  });

  it('puts the account’s relays into every self; a new list is a self-only delta for each device', () => {
    const m = build();
    const r1 = { id: randomUUID(), name: 'r1', address: '203.0.113.1' };
    m.setRelays([r1]);
    m.takeChanges();
    expect(NetmapMessage.parse(JSON.parse(m.snapshotFrame(a.id, 1)!)).self.relays).toEqual([r1]);
    m.setRelays([r1]);
    expect(m.pendingKind()).toBe('none'); // the same list: nothing to send
    const r2 = { id: randomUUID(), name: 'r2', address: '2001:db8::2' };
    m.setRelays([r1, r2]);
    expect(m.pendingKind()).not.toBe('none');
    const batch = m.takeChanges();
    for (const viewer of [a, b, c]) {
      const delta = DeltaMessage.parse(JSON.parse(deltaOf(m, batch, viewer.id, 2)));
      expect(delta).toMatchObject({ upsert: [], remove: [] });
      expect(delta.self).toMatchObject({ id: viewer.id, relays: [r1, r2] });
    }
    m.setRelays([]);
    const none = DeltaMessage.parse(JSON.parse(deltaOf(m, m.takeChanges(), a.id, 3)));
    expect(none.self).not.toHaveProperty('relays');
  });

  it('every frame it builds is a ServerMessage with no field the schema does not know', () => {
    const m = build();
    m.setRelays([{ id: randomUUID(), name: 'r1', address: '203.0.113.1' }]);
    m.takeChanges();
    const learned = [{ endpoint: '198.51.100.2:40000', kind: 'reflexive' as const, priority: 0 }];
    m.upsert({ ...b, online: true, endpoints: ['192.168.1.2:51820'], learned, mappingType: 'unknown' }, 11);
    m.remove(c.id, 12);
    const batch = m.takeChanges();
    const frames = {
      snapshot: m.snapshotFrame(a.id, 12)!,
      shared: deltaOf(m, batch, a.id, 13), // a is not in the batch: the body every such viewer shares
      own: deltaOf(m, batch, b.id, 13), // b's self changed: a body of its own
    };
    for (const frame of Object.values(frames)) {
      const json = JSON.parse(frame);
      // zod drops fields it does not know: equal output means there were none
      expect(ServerMessage.parse(json)).toEqual(json);
      // compact JSON in the order built: the frames agents received before they were typed
      expect(JSON.stringify(json)).toBe(frame);
    }
    expect(JSON.parse(frames.snapshot)).toMatchObject({ type: 'netmap', serial: 12, self: { id: a.id } });
    expect(JSON.parse(frames.shared)).toEqual({
      type: 'delta',
      serial: 13,
      upsert: [expect.objectContaining({ id: b.id, online: true })],
      remove: [c.id],
      access: [{ peers: [b.id], in: [{}], out: [{}] }],
    });
    const own = JSON.parse(frames.own);
    expect(Object.keys(own)).toEqual(['type', 'serial', 'upsert', 'remove', 'self']);
    expect(own).toMatchObject({
      upsert: [],
      remove: [c.id],
      self: { id: b.id, reflexive: ['198.51.100.2:40000'] },
    });
  });

  it('reuses the cached fragment: a snapshot is a join of pre-serialised peers', () => {
    const m = build();
    const snap = m.snapshotFrame(a.id, 1)!;
    expect(snap).toContain(
      JSON.stringify(NetmapMessage.shape.peers.element.parse(JSON.parse(snap).peers[0])),
    );
  });
});
