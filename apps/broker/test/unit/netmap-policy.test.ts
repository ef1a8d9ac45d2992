import type { DeviceState, NetmapSelf } from '@trellis/proto';
import { DeltaMessage, NetmapMessage, ServerMessage } from '@trellis/proto';
import fc from 'fast-check';
import { AccountNetmap, type ChangeBatch } from '../../src/domain/netmap-builder';
import { AccountPolicy } from '../../src/policy/account-policy';
import { deviceState as device } from '../support/device-state';
import { virtualState } from '../support/virtual-state';

const POLICY_V1 = `{
  // eng reaches the databases on 5432; ops reaches everything tagged
  "groups": { "group:eng": ["tag:eng"], "group:ops": ["tag:ops"] },
  "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:db": [], "tag:cam": [] },
  "rules": [
    { "src": ["group:eng"], "dst": ["tag:db"], "ports": ["tcp:5432"] },
    { "src": ["group:ops"], "dst": ["tag:db", "tag:cam"], "ports": ["tcp:22", "icmp"] }
  ]
}`;

const POLICY_V2 = `{
  "groups": { "group:eng": ["tag:eng"] },
  "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:db": [], "tag:cam": [] },
  "rules": [
    { "src": ["group:eng"], "dst": ["tag:db", "tag:cam"], "ports": ["tcp:5432", "udp:53"] }
  ]
}`;

const POLICY_ALL = `{ "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:db": [], "tag:cam": [] },
  "rules": [{ "src": ["*"], "dst": ["*"] }] }`;

/** Eight rules, and the same with one more or one fewer: the next version takes relations over. */
const MANY_RULES = [
  '{ "src": ["tag:eng"], "dst": ["tag:db"], "ports": ["tcp:5432"] }',
  '{ "src": ["tag:ops"], "dst": ["tag:db", "tag:cam"], "ports": ["tcp:22"] }',
  '{ "src": ["tag:ops"], "dst": ["*"], "ports": ["icmp"] }',
  '{ "src": ["tag:cam"], "dst": ["tag:ops"], "ports": ["udp:514"] }',
  '{ "src": ["tag:eng"], "dst": ["tag:eng"], "ports": ["tcp:22"] }',
  '{ "src": ["tag:db"], "dst": ["tag:db"], "ports": ["tcp:5432-5433"] }',
  '{ "src": ["tag:eng"], "dst": ["tag:cam"], "ports": ["tcp:443"] }',
  '{ "src": ["d5"], "dst": ["tag:ops"], "ports": ["tcp:8080"] }',
];
const manyRules = (rules: string[]) =>
  `{ "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:db": [], "tag:cam": [] }, "rules": [${rules.join(',')}] }`;

const TEXTS = [
  POLICY_V1,
  POLICY_V2,
  POLICY_ALL,
  manyRules(MANY_RULES),
  manyRules([...MANY_RULES, '{ "src": ["tag:db"], "dst": ["tag:eng"], "ports": ["tcp:9000"] }']),
  manyRules(MANY_RULES.slice(1)),
];

function tagged(d: DeviceState, ...tags: string[]): DeviceState {
  return tags.length > 0 ? { ...d, tags } : { ...d, tags: undefined };
}

/**
 * A device's view as an agent keeps it: peers and virtual devices by id, access by peer id, and
 * what it serves as a gateway (virtual device -> peer -> what that peer may open on it).
 */
interface View {
  peers: Map<string, string>;
  virtual: Map<string, string>;
  access: Map<string, string>;
  hosted: string;
}

function hostedOf(self: NetmapSelf): string {
  const byVd = (self.virtualDevices ?? []).map((v) => {
    const open = v.access.flatMap((a) => a.peers.map((p) => [p, JSON.stringify(a.in)] as const));
    return [v.id, v.address, v.lanAddress, open.sort()] as const;
  });
  return JSON.stringify(byVd);
}

function fromSnapshot(frame: string): View {
  const msg = NetmapMessage.parse(JSON.parse(frame));
  const view: View = { peers: new Map(), virtual: new Map(), access: new Map(), hosted: hostedOf(msg.self) };
  for (const p of msg.peers) view.peers.set(p.id, JSON.stringify(p));
  for (const v of msg.virtual ?? []) view.virtual.set(v.id, JSON.stringify(v));
  for (const a of msg.access) for (const id of a.peers) view.access.set(id, JSON.stringify([a.in, a.out]));
  return view;
}

function applyFrame(view: View, type: 'netmap' | 'delta', frame: string): View {
  ServerMessage.parse(JSON.parse(frame));
  if (type === 'netmap') return fromSnapshot(frame);
  const msg = DeltaMessage.parse(JSON.parse(frame));
  for (const id of msg.remove) {
    view.peers.delete(id);
    view.virtual.delete(id);
    view.access.delete(id);
  }
  for (const p of msg.upsert) view.peers.set(p.id, JSON.stringify(p));
  for (const v of msg.virtualUpsert ?? []) view.virtual.set(v.id, JSON.stringify(v));
  if (msg.self) view.hosted = hostedOf(msg.self);
  for (const a of msg.access ?? [])
    for (const id of a.peers) view.access.set(id, JSON.stringify([a.in, a.out]));
  return view;
}

function flushTo(m: AccountNetmap, views: Map<string, View>, serial: number): ChangeBatch {
  const batch = m.takeChanges();
  for (const [id, view] of views) {
    const out = m.batchFrame(batch, id, serial);
    if (out) views.set(id, applyFrame(view, out.type, out.frame));
  }
  return batch;
}

describe('AccountNetmap under an access policy', () => {
  const eng = tagged(device('eng1', '100.64.0.1'), 'tag:eng');
  const db = tagged(device('db1', '100.64.0.2'), 'tag:db');
  const cam = tagged(device('cam1', '100.64.0.3'), 'tag:cam');
  const ops = tagged(device('ops1', '100.64.0.4'), 'tag:ops');
  const loner = device('loner', '100.64.0.5');
  const all = [eng, db, cam, ops, loner];

  function build(text = POLICY_V1) {
    const m = new AccountNetmap('acme', 'trellis.internal', 1, [], AccountPolicy.build(1, text, all));
    for (const d of all) m.upsert(d);
    m.takeChanges();
    return m;
  }

  it('a snapshot holds only the peers the policy relates, with the ports each way', () => {
    const m = build();
    const snap = NetmapMessage.parse(JSON.parse(m.snapshotFrame(db.id, 1)!));
    expect(snap.peers.map((p) => p.name).sort()).toEqual(['eng1', 'ops1']);
    const byPeer = new Map(snap.access.flatMap((a) => a.peers.map((p) => [p, a] as const)));
    expect(byPeer.get(eng.id)).toMatchObject({ in: [{ proto: 'tcp', ports: [[5432, 5432]] }], out: [] });
    expect(byPeer.get(ops.id)).toMatchObject({
      in: [{ proto: 'tcp', ports: [[22, 22]] }, { proto: 'icmp' }],
      out: [],
    });
    const fromEng = NetmapMessage.parse(JSON.parse(m.snapshotFrame(eng.id, 1)!));
    expect(fromEng.peers.map((p) => p.name)).toEqual(['db1']);
    expect(fromEng.access).toEqual([
      { peers: [db.id], in: [], out: [{ proto: 'tcp', ports: [[5432, 5432]] }] },
    ]);
    // outside every rule: sees nobody, and nobody sees it
    expect(NetmapMessage.parse(JSON.parse(m.snapshotFrame(loner.id, 1)!)).peers).toEqual([]);
    expect(m.canSee(eng.id, loner.id)).toBe(false);
    expect(m.canSee(eng.id, cam.id)).toBe(false);
  });

  it('a device that gains a tag appears to the devices that may now reach it, and gets its own netmap again', () => {
    const m = build();
    m.upsert(tagged(loner, 'tag:db'), 2);
    const batch = m.takeChanges();
    expect(batch.resnapshot.has(loner.id)).toBe(true);
    expect(m.batchFrame(batch, loner.id, 2)?.type).toBe('netmap');
    const toEng = DeltaMessage.parse(JSON.parse(m.batchFrame(batch, eng.id, 2)!.frame));
    expect(toEng.upsert.map((p) => p.id)).toEqual([loner.id]);
    expect(toEng.access).toEqual([
      { peers: [loner.id], in: [], out: [{ proto: 'tcp', ports: [[5432, 5432]] }] },
    ]);
    // cam neither saw it nor sees it now
    expect(m.batchFrame(batch, cam.id, 2)).toBeUndefined();
  });

  it('a device that loses its tag is removed from those that saw it, and only from them', () => {
    const m = build();
    m.upsert(tagged(db), 2);
    const batch = m.takeChanges();
    expect(DeltaMessage.parse(JSON.parse(m.batchFrame(batch, eng.id, 2)!.frame)).remove).toEqual([db.id]);
    expect(m.batchFrame(batch, cam.id, 2)).toBeUndefined();
  });

  it('a removal reaches only the devices that saw the device', () => {
    const m = build();
    m.remove(cam.id, 2);
    const batch = m.takeChanges();
    expect(DeltaMessage.parse(JSON.parse(m.batchFrame(batch, ops.id, 2)!.frame)).remove).toEqual([cam.id]);
    expect(m.batchFrame(batch, eng.id, 2)).toBeUndefined();
    expect(m.batchFrame(batch, db.id, 2)).toBeUndefined();
  });

  it('a new policy sends the devices whose view changed a delta to it, and nothing to the others', () => {
    const m = build();
    const before = new Map(all.map((d) => [d.id, fromSnapshot(m.snapshotFrame(d.id, 1)!)]));
    const bodies = m.setPolicy(AccountPolicy.build(2, POLICY_V2, all));
    // eng gains cam and udp 53; db's in-ports from eng change; cam gains eng; ops loses everything
    expect([...bodies.keys()].sort()).toEqual([eng.id, db.id, cam.id, ops.id].sort());
    expect(m.pendingKind()).toBe('none');
    const engDelta = DeltaMessage.parse(JSON.parse(AccountNetmap.policyFrame(bodies.get(eng.id)!, 2)));
    // cam is new to eng (whole peer); db only changed ports (access, no peer record again)
    expect(engDelta.upsert.map((p) => p.name)).toEqual(['cam1']);
    expect(engDelta.access?.flatMap((a) => a.peers).sort()).toEqual([cam.id, db.id].sort());
    const opsDelta = DeltaMessage.parse(JSON.parse(AccountNetmap.policyFrame(bodies.get(ops.id)!, 2)));
    expect(opsDelta.remove.sort()).toEqual([db.id, cam.id].sort());
    expect(opsDelta.upsert).toEqual([]);
    // Applied to what each device held, every delta gives what a fresh snapshot gives.
    for (const d of all) {
      const body = bodies.get(d.id);
      const view = body
        ? applyFrame(before.get(d.id)!, 'delta', AccountNetmap.policyFrame(body, 2))
        : before.get(d.id)!;
      expect(view).toEqual(fromSnapshot(m.snapshotFrame(d.id, 2)!));
    }
  });

  it('a policy that fails to parse denies everything rather than allowing everything', () => {
    const policy = AccountPolicy.build(3, '{ "rules": [ nonsense', all);
    expect(policy.failedClosed).toBe(true);
    const m = new AccountNetmap('acme', 'trellis.internal', 1, [], policy);
    for (const d of all) m.upsert(d);
    expect(NetmapMessage.parse(JSON.parse(m.snapshotFrame(eng.id, 1)!)).peers).toEqual([]);
  });

  it('devices that follow every frame always hold what a fresh snapshot would give them', () => {
    const names = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
    const base = names.map((n, i) => device(n, `100.64.1.${i + 1}`));
    // Virtual devices, all at the same LAN address, behind any device (an absent one too).
    const vds = ['v0', 'v1', 'v2'].map((n, i) =>
      virtualState(n, `100.64.2.${i + 1}`, base[0]!.id, '192.168.1.100'),
    );
    const isVd = (id: string) => vds.some((v) => v.id === id);
    const tagSets = [[], ['tag:eng'], ['tag:db'], ['tag:ops'], ['tag:cam'], ['tag:eng', 'tag:cam']];
    // Under POLICY_ALL every device is in one class; eng sees eng under none: add a policy where it does.
    TEXTS.push(`{ "tagOwners": { "tag:eng": [], "tag:ops": [], "tag:db": [], "tag:cam": [] },
      "rules": [{ "src": ["tag:eng"], "dst": ["tag:eng"], "ports": ["tcp:22"] }] }`);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('tag' as const), i: fc.nat(5), tags: fc.nat(5) }),
      fc.record({ kind: fc.constant('online' as const), i: fc.nat(5), online: fc.boolean() }),
      fc.record({ kind: fc.constant('remove' as const), i: fc.nat(5) }),
      fc.record({ kind: fc.constant('policy' as const), p: fc.nat(TEXTS.length - 1) }),
      fc.record({ kind: fc.constant('flush' as const) }),
      fc.record({ kind: fc.constant('vd' as const), i: fc.nat(2), via: fc.nat(5), tags: fc.nat(5) }),
      fc.record({ kind: fc.constant('vd-remove' as const), i: fc.nat(2) }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.nat(TEXTS.length - 1),
        fc.nat(63),
        (ops, start, initial) => {
          // Some devices only join later: classes grow from one member (a class of one sees no one in it).
          const present = new Map(
            base.flatMap((d, i) => ((initial >> i) & 1 ? [[d.id, tagged(d, ...tagSets[i]!)] as const] : [])),
          );
          const m = new AccountNetmap(
            'acme',
            'z',
            1,
            [],
            AccountPolicy.build(1, TEXTS[start]!, present.values()),
          );
          for (const d of present.values()) m.upsert(d);
          const earlier = [...present.values()];
          m.takeChanges();
          const views = new Map([...present.keys()].map((id) => [id, fromSnapshot(m.snapshotFrame(id, 1)!)]));
          const connected = () => [...present.keys()].filter((id) => !isVd(id));
          let serial = 1;
          let version = 1;
          let text = TEXTS[start]!;
          for (const o of ops) {
            serial += 1;
            if (o.kind === 'policy') {
              flushTo(m, views, serial);
              serial += 1;
              version += 1;
              text = TEXTS[o.p]!;
              // As the hub does: built from an older device list over the policy in force (taking
              // over relations no changed rule touches), relations computed ahead, then brought up
              // to the devices present now.
              const policy = AccountPolicy.build(version, text, earlier, m.policyInForce);
              for (const _ of policy.computeRelations());
              policy.sync(present.values());
              for (const [id, body] of m.setPolicy(policy)) {
                const view = views.get(id);
                if (view) views.set(id, applyFrame(view, 'delta', AccountNetmap.policyFrame(body, serial)));
              }
            } else if (o.kind === 'flush') {
              flushTo(m, views, serial);
            } else if (o.kind === 'vd') {
              const v = vds[o.i]!;
              const next = tagged({ ...v, via: base[o.via]!.id }, ...tagSets[o.tags]!);
              present.set(v.id, next);
              m.upsert(next, serial);
            } else if (o.kind === 'vd-remove') {
              const v = vds[o.i]!;
              if (!present.delete(v.id)) continue;
              m.remove(v.id, serial);
            } else {
              const d = base[o.i]!;
              const cur = present.get(d.id);
              if (o.kind === 'remove') {
                if (!cur) continue;
                present.delete(d.id);
                m.remove(d.id, serial);
              } else {
                const next =
                  o.kind === 'tag'
                    ? tagged(cur ?? d, ...tagSets[o.tags]!)
                    : { ...(cur ?? d), online: o.online };
                present.set(d.id, next);
                m.upsert(next, serial);
                // a device (re)joining connects with a snapshot
                if (!cur) views.set(d.id, fromSnapshot(m.snapshotFrame(d.id, serial)!));
              }
            }
          }
          flushTo(m, views, serial + 1);
          // The oracle: the same account built from scratch, nothing incremental or memoised in it.
          const rebuilt = new AccountNetmap(
            'acme',
            'z',
            1,
            [],
            AccountPolicy.build(version, text, present.values()),
          );
          for (const d of present.values()) rebuilt.upsert(d);
          for (const id of connected()) {
            const fresh = fromSnapshot(rebuilt.snapshotFrame(id, serial + 1)!);
            expect(fromSnapshot(m.snapshotFrame(id, serial + 1)!)).toEqual(fresh);
            const held = views.get(id)!;
            expect(held.peers).toEqual(fresh.peers);
            expect(held.virtual).toEqual(fresh.virtual);
            expect(held.access).toEqual(fresh.access);
            expect(held.hosted).toEqual(fresh.hosted);
            // Whoever sees a virtual device sees the gateway it is behind.
            for (const v of held.virtual.values())
              expect(held.peers.has(JSON.parse(v).via) || JSON.parse(v).via === id).toBe(true);
          }
        },
      ),
      { numRuns: Number(process.env.TRELLIS_PROPERTY_RUNS ?? 300) },
    );
  });
});
