import { DeltaMessage, type DeviceState, NetmapMessage, ServerMessage } from '@trellis/proto';
import { AccountNetmap, type ChangeBatch } from '../../src/domain/netmap-builder';
import { AccountPolicy } from '../../src/policy/account-policy';
import { deviceState as device } from '../support/device-state';
import { virtualState } from '../support/virtual-state';

/** Cameras are reachable by ops on tcp 80 only; nothing else is allowed. */
const CAMS = `{ "tagOwners": { "tag:ops": [], "tag:cams": [] },
  "rules": [{ "src": ["tag:ops"], "dst": ["tag:cams"], "ports": ["tcp:80"] }] }`;
/** As CAMS, and ops may also ping them. */
const CAMS_PING = `{ "tagOwners": { "tag:ops": [], "tag:cams": [] },
  "rules": [{ "src": ["tag:ops"], "dst": ["tag:cams"], "ports": ["tcp:80", "icmp"] }] }`;
const TCP80 = [{ proto: 'tcp', ports: [[80, 80]] }];

/** Parses a frame and checks it carries no field the schema does not know. */
function parsed(frame: string) {
  const json = JSON.parse(frame);
  expect(ServerMessage.parse(json)).toEqual(json);
  return json;
}

const snapshot = (m: AccountNetmap, id: string) => NetmapMessage.parse(parsed(m.snapshotFrame(id, 1)!));

function frameOf(m: AccountNetmap, batch: ChangeBatch, id: string) {
  const out = m.batchFrame(batch, id, 2);
  return out && { type: out.type, msg: parsed(out.frame) };
}

function delta(m: AccountNetmap, batch: ChangeBatch, id: string) {
  const out = frameOf(m, batch, id);
  if (out?.type !== 'delta') throw new Error(`expected a delta, got ${out?.type}`);
  return DeltaMessage.parse(out.msg);
}

const accessOf = (msg: { access?: { peers: string[]; in: unknown; out: unknown }[] }, id: string) =>
  msg.access?.find((a) => a.peers.includes(id));

describe('AccountNetmap with virtual devices', () => {
  const gw = device('gw', '100.64.0.1');
  const ops = device('ops', '100.64.0.2', { tags: ['tag:ops'] });
  const loner = device('loner', '100.64.0.3');
  const cam = virtualState('cam', '100.64.0.10', gw.id, '192.168.1.100', { tags: ['tag:cams'] });

  function build(devices: DeviceState[], text?: string) {
    const policy = text === undefined ? undefined : AccountPolicy.build(1, text, devices);
    const m = new AccountNetmap('acme', 'trellis.internal', 1, [], policy);
    for (const d of devices) m.upsert(d);
    m.takeChanges();
    return m;
  }

  it('a snapshot lists the virtual device apart, its gateway as a peer, and access for both', () => {
    const m = build([gw, ops, cam]);
    const snap = snapshot(m, ops.id);
    expect(snap.peers.map((p) => p.id)).toEqual([gw.id]);
    expect(snap.virtual).toEqual([
      { id: cam.id, name: 'cam', dnsName: 'cam.acme.trellis.internal', address: '100.64.0.10', via: gw.id },
    ]);
    expect(accessOf(snap, cam.id)).toMatchObject({ in: [{}], out: [{}] });
    expect(accessOf(snap, gw.id)).toMatchObject({ in: [{}], out: [{}] });
    // It never connects: no punching, no relay, no pair.
    expect(m.punchView(cam.id)).toBeUndefined();
    expect(m.canSee(ops.id, cam.id)).toBe(false);
    expect(m.canSee(ops.id, gw.id)).toBe(true);
  });

  it('the policy opens only the virtual device: its gateway is seen with nothing opened, and serves it', () => {
    const m = build([gw, ops, loner, cam], CAMS);
    const snap = snapshot(m, ops.id);
    expect(snap.peers.map((p) => p.id)).toEqual([gw.id]);
    expect(snap.virtual?.map((v) => v.id)).toEqual([cam.id]);
    expect(accessOf(snap, cam.id)).toEqual({ peers: [cam.id], in: [], out: TCP80 });
    expect(accessOf(snap, gw.id)).toEqual({ peers: [gw.id], in: [], out: [] });
    const own = snapshot(m, gw.id);
    expect(own.peers.map((p) => p.id)).toEqual([ops.id]);
    expect(accessOf(own, ops.id)).toEqual({ peers: [ops.id], in: [], out: [] });
    expect(own.self.virtualDevices).toEqual([
      {
        id: cam.id,
        name: 'cam',
        address: '100.64.0.10',
        lanAddress: '192.168.1.100',
        access: [{ peers: [ops.id], in: TCP80 }],
      },
    ]);
    // The device the policy does not let reach the camera sees neither it nor its gateway.
    const none = snapshot(m, loner.id);
    expect(none.peers).toEqual([]);
    expect(none.virtual).toBeUndefined();
  });

  it('adding a virtual device brings its gateway to whoever may reach it; removing it takes both away', () => {
    const m = build([gw, ops, loner], CAMS);
    expect(snapshot(m, ops.id).peers).toEqual([]);
    m.upsert(cam, 2);
    let batch = m.takeChanges();
    const added = delta(m, batch, ops.id);
    expect(added.upsert.map((p) => p.id)).toEqual([gw.id]);
    expect(added.virtualUpsert?.map((v) => v.id)).toEqual([cam.id]);
    expect(accessOf(added, cam.id)).toMatchObject({ out: TCP80 });
    expect(accessOf(added, gw.id)).toMatchObject({ in: [], out: [] });
    // The gateway's class changed: its whole netmap again, now serving the camera.
    const own = frameOf(m, batch, gw.id);
    expect(own?.type).toBe('netmap');
    expect(NetmapMessage.parse(own!.msg).self.virtualDevices?.map((v) => v.id)).toEqual([cam.id]);
    expect(frameOf(m, batch, loner.id)).toBeUndefined();

    m.remove(cam.id, 3);
    batch = m.takeChanges();
    const removed = delta(m, batch, ops.id);
    expect(removed.remove.sort()).toEqual([cam.id, gw.id].sort());
    expect(removed.upsert).toEqual([]);
    const back = NetmapMessage.parse(frameOf(m, batch, gw.id)!.msg);
    expect(back.self).not.toHaveProperty('virtualDevices');
    expect(back.peers).toEqual([]);
  });

  it("a gateway's self follows who may reach its virtual devices: a peer joining, a new policy", () => {
    const m = build([gw, ops, cam], CAMS);
    const ops2 = device('ops2', '100.64.0.4', { tags: ['tag:ops'] });
    m.upsert(ops2, 2);
    const batch = m.takeChanges();
    const self = delta(m, batch, gw.id).self;
    expect(self?.virtualDevices?.[0]?.access).toEqual([{ peers: [ops.id, ops2.id], in: TCP80 }]);
    // Another change that touches nobody's access to the camera does not resend it.
    m.upsert({ ...ops2, online: true }, 3);
    expect(delta(m, m.takeChanges(), gw.id).self).toBeUndefined();

    const devices = [gw, ops, cam, ops2];
    const bodies = m.setPolicy(AccountPolicy.build(2, CAMS_PING, devices, m.policyInForce));
    const body = DeltaMessage.parse(parsed(AccountNetmap.policyFrame(bodies.get(gw.id)!, 4)));
    expect(body.self?.virtualDevices?.[0]?.access).toEqual([
      { peers: [ops.id, ops2.id], in: [...TCP80, { proto: 'icmp' }] },
    ]);
    // ops sees the camera's new ports, the gateway unchanged (nothing opened on it).
    const toOps = DeltaMessage.parse(parsed(AccountNetmap.policyFrame(bodies.get(ops.id)!, 4)));
    expect(toOps.access?.flatMap((a) => a.peers)).toEqual([cam.id]);
  });

  it('a resumed netmap gets the virtual devices added meanwhile, and their gateway', () => {
    const m = build([gw, ops], CAMS);
    const cursor = m.serial;
    m.upsert(cam, 5);
    m.takeChanges();
    const out = m.resumeFrame(ops.id, { cursor, base: 1 }, 6);
    if (!out || !('frame' in out)) throw new Error('expected a resumed delta');
    const msg = DeltaMessage.parse(parsed(out.frame));
    expect(msg.upsert.map((p) => p.id)).toEqual([gw.id]);
    expect(msg.virtualUpsert?.map((v) => v.id)).toEqual([cam.id]);
    expect(accessOf(msg, cam.id)).toMatchObject({ out: TCP80 });
  });

  it('two sites with the same LAN address: distinct virtual devices, each served by its own gateway', () => {
    const gw2 = device('gw2', '100.64.0.5');
    const cam2 = virtualState('cam2', '100.64.0.11', gw2.id, '192.168.1.100', { tags: ['tag:cams'] });
    const m = build([gw, gw2, ops, cam, cam2], CAMS);
    const snap = snapshot(m, ops.id);
    expect(snap.peers.map((p) => p.id).sort()).toEqual([gw.id, gw2.id].sort());
    expect(new Map(snap.virtual?.map((v) => [v.address, v.via]))).toEqual(
      new Map([
        ['100.64.0.10', gw.id],
        ['100.64.0.11', gw2.id],
      ]),
    );
    for (const [g, v] of [
      [gw, cam],
      [gw2, cam2],
    ] as const) {
      const served = snapshot(m, g.id).self.virtualDevices;
      expect(served?.map((s) => [s.id, s.lanAddress])).toEqual([[v.id, '192.168.1.100']]);
    }
    // The cameras do not talk to each other: the gateways do not see each other either.
    expect(m.canSee(gw.id, gw2.id)).toBe(false);
  });

  it('gateways whose virtual devices may talk see each other, with nothing opened between them', () => {
    const gw2 = device('gw2', '100.64.0.5');
    const nvr = virtualState('nvr', '100.64.0.11', gw2.id, '192.168.1.100', { tags: ['tag:ops'] });
    const m = build([gw, gw2, cam, nvr], CAMS);
    const snap = snapshot(m, gw.id);
    expect(snap.peers.map((p) => p.id)).toEqual([gw2.id]);
    expect(accessOf(snap, gw2.id)).toEqual({ peers: [gw2.id], in: [], out: [] });
    // Its own camera is in its self, not its peers' lists: the policy relates nothing of gw to it.
    expect(snap.virtual?.map((v) => v.id)).toEqual([nvr.id]);
    // The other site's recorder may open tcp 80 on the camera: listed by its id in what gw serves.
    expect(snap.self.virtualDevices?.[0]?.access).toEqual([{ peers: [nvr.id], in: TCP80 }]);
  });

  it('a virtual device whose gateway is not in the netmap is seen by nobody until it comes', () => {
    const m = build([ops, cam]);
    expect(snapshot(m, ops.id).virtual).toBeUndefined();
    m.upsert(gw, 2);
    const batch = m.takeChanges();
    const d = delta(m, batch, ops.id);
    expect(d.upsert.map((p) => p.id)).toEqual([gw.id]);
    expect(d.virtualUpsert?.map((v) => v.id)).toEqual([cam.id]);
    m.remove(gw.id, 3);
    expect(delta(m, m.takeChanges(), ops.id).remove.sort()).toEqual([gw.id, cam.id].sort());
  });
});
