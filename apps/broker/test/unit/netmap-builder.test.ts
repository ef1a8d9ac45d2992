import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { DeltaMessage, NetmapMessage } from '@trellis/proto';
import { AccountNetmap, type DeviceState } from '../../src/domain/netmap-builder';

function device(name: string, address: string): DeviceState {
  return {
    id: randomUUID(),
    name,
    publicKey: generateKeyPair().publicKey,
    address,
    endpoints: [],
    online: false,
  };
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
    const delta = DeltaMessage.parse(JSON.parse(m.deltaFrame(batch, a.id, 11)!));
    expect(delta.upsert).toHaveLength(1);
    expect(delta.upsert[0]).toMatchObject({ id: b.id, online: true, endpoints: ['192.0.2.1:51820'] });
    expect(delta.remove).toEqual([]);
    expect(m.serial).toBe(12);
  });

  it('a device is not told about its own change', () => {
    const m = build();
    m.upsert({ ...b, online: true });
    const batch = m.takeChanges();
    expect(m.deltaFrame(batch, b.id, 1)).toBeUndefined();
    expect(m.deltaFrame(batch, a.id, 1)).toBeDefined();
  });

  it('upsert then remove in one window leaves only the removal', () => {
    const m = build();
    m.upsert({ ...c, online: true });
    m.remove(c.id);
    const delta = DeltaMessage.parse(JSON.parse(m.deltaFrame(m.takeChanges(), a.id, 1)!));
    expect(delta.upsert).toEqual([]);
    expect(delta.remove).toEqual([c.id]);
    expect(m.snapshotFrame(c.id, 1)).toBeUndefined();
  });

  it('an unchanged upsert produces no change', () => {
    const m = build();
    m.upsert({ ...a });
    expect(m.hasPendingChanges()).toBe(false);
  });

  it('reuses the cached fragment: a snapshot is a join of pre-serialised peers', () => {
    const m = build();
    const snap = m.snapshotFrame(a.id, 1)!;
    expect(snap).toContain(
      JSON.stringify(NetmapMessage.shape.peers.element.parse(JSON.parse(snap).peers[0])),
    );
  });
});
