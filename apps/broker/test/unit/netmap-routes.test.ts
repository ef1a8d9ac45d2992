import {
  type DeviceState,
  NetmapMessage,
  type NetmapPeer,
  type NetmapSelf,
  ServerMessage,
} from '@trellis/proto';
import type { ChangeBatch } from '../../src/domain/netmap-builder';
import { AccountNetmap } from '../../src/domain/netmap-builder';
import { deviceState as device } from '../support/device-state';

/** Gateways in the netmap: peers carry their served routes, a device sees its own advertised ones. */
describe('AccountNetmap routes', () => {
  const client = device('client', '100.64.0.1');
  const gw = device('gw', '100.64.0.2');
  const routes = (...r: NonNullable<DeviceState['routes']>) => r;

  function build() {
    const m = new AccountNetmap('acme', 'trellis.internal', 10);
    for (const d of [client, gw]) m.upsert(d);
    m.takeChanges();
    return m;
  }

  const peerOf = (m: AccountNetmap, viewer: string, peer: string, serial: number) => {
    const snap = NetmapMessage.parse(JSON.parse(m.snapshotFrame(viewer, serial)!));
    return snap.peers.find((p) => p.id === peer)!;
  };

  it('a peer lists only approved routes that are up, with since; none: no field', () => {
    const m = build();
    expect(peerOf(m, client.id, gw.id, 10).routes).toBeUndefined();
    m.upsert(
      {
        ...gw,
        routes: routes(
          { prefix: '10.1.0.0/24', approved: true, since: 5 },
          { prefix: '10.2.0.0/24', approved: false, since: 6 },
          { prefix: '10.3.0.0/24', approved: true, since: 7, down: true },
        ),
      },
      11,
    );
    expect(peerOf(m, client.id, gw.id, 11).routes).toEqual([{ prefix: '10.1.0.0/24', since: 5 }]);
  });

  /** What a viewer's frame of a batch says (a delta, or a snapshot when its class changed). */
  const frameOf = (m: AccountNetmap, batch: ChangeBatch, viewer: string, serial: number) => {
    const msg = ServerMessage.parse(JSON.parse(m.batchFrame(batch, viewer, serial)!.frame));
    if (msg.type === 'netmap') return { self: msg.self as NetmapSelf | undefined, peers: msg.peers };
    if (msg.type !== 'delta') throw new Error(`unexpected ${msg.type}`);
    return { self: msg.self, peers: msg.upsert as NetmapPeer[] };
  };

  it('an approval reaches peers as an upsert and the gateway as a change of its self', () => {
    const m = build();
    const pending = { ...gw, routes: routes({ prefix: '0.0.0.0/0', approved: false, since: 5 }) };
    m.upsert(pending, 11);
    const first = m.takeChanges();
    // Pending: peers get no route, the gateway learns what it advertised.
    const before = frameOf(m, first, client.id, 11);
    expect(before.peers.find((p) => p.id === gw.id)!.routes).toBeUndefined();
    const own = frameOf(m, first, gw.id, 11);
    expect(own.self?.routes).toEqual([{ prefix: '0.0.0.0/0', approved: false }]);

    m.upsert({ ...gw, routes: routes({ prefix: '0.0.0.0/0', approved: true, since: 5 }) }, 12);
    const second = m.takeChanges();
    const seen = frameOf(m, second, client.id, 12);
    expect(seen.peers.find((p) => p.id === gw.id)!.routes).toEqual([{ prefix: '0.0.0.0/0', since: 5 }]);
    const approved = frameOf(m, second, gw.id, 12);
    expect(approved.self?.routes).toEqual([{ prefix: '0.0.0.0/0', approved: true }]);

    // Withdrawn: peers lose the route, and the journal has the change for a resuming client.
    m.upsert({ ...gw }, 13);
    const third = m.takeChanges();
    const gone = frameOf(m, third, client.id, 13);
    expect(gone.peers.find((p) => p.id === gw.id)!.routes).toBeUndefined();
    expect(m.journal.since(11)).toEqual(new Set([gw.id]));
  });
});
