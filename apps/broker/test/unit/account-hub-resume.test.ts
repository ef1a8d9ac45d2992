import { inflateRawSync } from 'node:zlib';
import type { DeviceState } from '@trellis/proto';
import { DeltaMessage, NetmapMessage } from '@trellis/proto';
import fc from 'fast-check';
import { AccountHub } from '../../src/control/account-hub';
import type { ControlSession } from '../../src/control/control-session';
import { AccountPolicy } from '../../src/policy/account-policy';
import { deviceState as device } from '../support/device-state';
import { SAMPLE_POLICIES as POLICIES, SAMPLE_TAG_SETS as TAG_SETS } from '../support/sample-policies';

/** What an agent holds: the netmap as it applied the frames, and where to resume from. */
interface Held {
  serial: number;
  token: string | null;
  self: string;
  peers: Map<string, string>;
  access: Map<string, string>;
}

/** Applies a frame as the agent's NetmapTracker does, checking the serials the same way. */
function apply(held: Held | null, frame: string): Held {
  const raw = JSON.parse(frame) as { type: string };
  if (raw.type === 'netmap') {
    const m = NetmapMessage.parse(raw);
    const next: Held = {
      serial: m.serial,
      token: m.resume ?? null,
      self: JSON.stringify(m.self),
      peers: new Map(m.peers.map((p) => [p.id, JSON.stringify(p)])),
      access: new Map(),
    };
    for (const a of m.access) for (const id of a.peers) next.access.set(id, JSON.stringify([a.in, a.out]));
    return next;
  }
  const d = DeltaMessage.parse(raw);
  if (held === null) throw new Error('delta before snapshot');
  const base = d.base ?? d.serial - 1;
  if (base !== held.serial || d.serial <= base)
    throw new Error(`serial gap: ${held.serial} → ${d.serial}/${base}`);
  for (const id of d.remove) {
    held.peers.delete(id);
    held.access.delete(id);
  }
  for (const p of d.upsert) held.peers.set(p.id, JSON.stringify(p));
  // Capability 3's presence lists, as the agent's NetmapTracker applies them.
  for (const [ids, online] of [
    [d.online, true],
    [d.offline, false],
  ] as const) {
    for (const id of ids ?? []) {
      const peer = held.peers.get(id);
      if (peer) held.peers.set(id, JSON.stringify({ ...JSON.parse(peer), online }));
    }
  }
  for (const a of d.access ?? [])
    for (const id of a.peers) held.access.set(id, JSON.stringify([a.in, a.out]));
  if (d.self) held.self = JSON.stringify(d.self);
  held.serial = d.serial;
  held.token = d.resume ?? null;
  return held;
}

/** Frames of capability 3 seen: compressed snapshots, deltas with presence lists. */
const compactSeen = { compressed: 0, presence: 0 };

class FakeSession implements ControlSession {
  readonly accountId = 'acct';
  readonly connectionId: string;
  held: Held | null;
  frames: string[] = [];
  constructor(
    readonly deviceId: string,
    public serial: number,
    held: Held | null,
    /** Capability 3: compressed snapshots and presence lists. */
    readonly compact = false,
  ) {
    this.held = held;
    this.connectionId = `i:${deviceId}:${serial}`;
  }
  rttMs = () => null;
  relayRttMs = () => ({});
  send(frame: string | Buffer): void {
    if (typeof frame !== 'string' && !this.compact) throw new Error('binary frame to an older agent');
    const text = typeof frame === 'string' ? frame : inflateRawSync(frame).toString('utf8');
    const presence = /"(online|offline)":\[/.test(text);
    if (!this.compact && presence) throw new Error('presence list to an older agent');
    if (typeof frame !== 'string') compactSeen.compressed++;
    if (presence) compactSeen.presence++;
    this.frames.push(text);
    this.held = apply(this.held, text);
  }
  close(): void {}
}

function snapshotView(hub: AccountHub, id: string): Held {
  return apply(null, hub.netmap.snapshotFrame(id, hub.netmap.serial + 1)!);
}

function sameView(held: Held, fresh: Held): void {
  expect(new Map([...held.peers].sort())).toEqual(new Map([...fresh.peers].sort()));
  expect(new Map([...held.access].sort())).toEqual(new Map([...fresh.access].sort()));
  expect(held.self).toEqual(fresh.self);
}

describe('AccountHub: a reconnecting device resumes from the netmap it holds', () => {
  it('a device that missed a few changes gets a delta with them, on top of its serial', () => {
    const [a, b, c] = [device('a', '100.64.0.1'), device('b', '100.64.0.2'), device('c', '100.64.0.3')];
    const hub = AccountHub.create('acme', 'z', 0, 10, [a, b, c]);
    const first = new FakeSession(a.id, 10, null);
    expect(hub.attach(first)).toEqual({ how: 'snapshot' });
    hub.detach(first);
    const held = first.held!;
    hub.applyChange({ kind: 'upsert', device: { ...b, endpoints: ['192.0.2.7:41641'] } }, 11);
    hub.applyChange({ kind: 'remove', deviceId: c.id }, 12);
    hub.flush();
    const again = new FakeSession(a.id, held.serial + 1, held);
    expect(hub.attach(again, { token: held.token!, lastSerial: held.serial })).toEqual({ how: 'resumed' });
    const delta = DeltaMessage.parse(JSON.parse(again.frames[0]!));
    expect(delta.base).toBe(10);
    expect(delta.upsert.map((p) => p.id)).toEqual([b.id]);
    expect(delta.remove).toEqual([c.id]);
    sameView(again.held!, snapshotView(hub, a.id));
  });

  it('a token from another policy, from before the hub knew, or junk gets a snapshot', () => {
    const [a, b] = [device('a', '100.64.0.1'), device('b', '100.64.0.2')];
    const hub = AccountHub.create('acme', 'z', 0, 10, [a, b]);
    const held = () => apply(null, hub.netmap.snapshotFrame(a.id, 9)!);
    const attach = (token: string) => hub.attach(new FakeSession(a.id, 10, held()), { token, lastSerial: 9 });
    // Before the hub loaded (serial 10): the journal does not reach back there.
    expect(attach('9.0')).toEqual({ how: 'snapshot', refused: 'journal' });
    expect(attach('10.1')).toEqual({ how: 'snapshot', refused: 'token' }); // another policy version
    expect(attach('nonsense')).toEqual({ how: 'snapshot', refused: 'token' });
    expect(attach('10.0')).toEqual({ how: 'resumed' });
  });

  it('a device whose own tags changed meanwhile gets a snapshot: what it may see changed with them', () => {
    const [a, b] = [device('a', '100.64.0.1'), device('b', '100.64.0.2', { tags: ['tag:db'] })];
    const policy = AccountPolicy.build(1, POLICIES[1]!, [a, b]);
    const hub = AccountHub.create('acme', 'z', 0, 10, [a, b], [], [], policy);
    hub.policyVersion = 1;
    const first = new FakeSession(a.id, 10, null);
    hub.attach(first);
    hub.detach(first);
    expect(first.held!.peers.size).toBe(0);
    hub.applyChange({ kind: 'upsert', device: { ...a, tags: ['tag:eng'] } }, 11);
    const held = first.held!;
    const again = new FakeSession(a.id, held.serial + 1, held);
    expect(hub.attach(again, { token: held.token!, lastSerial: held.serial })).toEqual({
      how: 'snapshot',
      refused: 'reclassed',
    });
    expect([...again.held!.peers.keys()]).toEqual([b.id]);
  });

  it('a device that missed changes to more than a quarter of the account gets a snapshot', () => {
    const devices = Array.from({ length: 80 }, (_, i) => device(`d${i}`, `100.64.0.${i + 1}`));
    const hub = AccountHub.create('acme', 'z', 0, 10, devices);
    const first = new FakeSession(devices[0]!.id, 10, null);
    hub.attach(first);
    hub.detach(first);
    const held = first.held!;
    const change = (i: number) =>
      hub.applyChange({ kind: 'upsert', device: { ...devices[i]!, endpoints: [`192.0.2.${i}:1`] } }, 10 + i);
    for (let i = 1; i <= 20; i++) change(i);
    const resume = () =>
      hub.attach(new FakeSession(devices[0]!.id, held.serial + 1, structuredClone(held)), {
        token: held.token!,
        lastSerial: held.serial,
      });
    expect(resume()).toEqual({ how: 'resumed' }); // 20 of 80: a quarter
    change(21);
    expect(resume()).toEqual({ how: 'snapshot', refused: 'changes' });
  });

  it('a change whose event came after later ones is not lost to a device that left in between', () => {
    const [a, b, c] = [device('a', '100.64.0.1'), device('b', '100.64.0.2'), device('c', '100.64.0.3')];
    const hub = AccountHub.create('acme', 'z', 0, 10, [a, b, c]);
    const first = new FakeSession(a.id, 10, null);
    hub.attach(first);
    // 11 (b's) is still on its way from another instance when 12 (c's) arrives and is sent.
    hub.applyChange({ kind: 'upsert', device: { ...c, endpoints: ['192.0.2.3:1'] } }, 12);
    hub.flush();
    hub.detach(first);
    hub.applyChange({ kind: 'upsert', device: { ...b, endpoints: ['192.0.2.2:1'] } }, 11);
    const held = first.held!;
    const again = new FakeSession(a.id, held.serial + 1, held);
    hub.attach(again, { token: held.token!, lastSerial: held.serial });
    sameView(again.held!, snapshotView(hub, a.id));
  });

  it('whatever happened meanwhile, a resumed device holds what a fresh snapshot gives', () => {
    const outcomes = { resumed: 0, snapshot: 0 };
    const base = ['d0', 'd1', 'd2', 'd3', 'd4'].map((n, i) => device(n, `100.64.1.${i + 1}`));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('endpoint' as const), i: fc.nat(4), port: fc.nat(3) }),
      fc.record({ kind: fc.constant('tag' as const), i: fc.nat(4), tags: fc.nat(2) }),
      fc.record({ kind: fc.constant('rename' as const), i: fc.nat(4), n: fc.nat(2) }),
      fc.record({ kind: fc.constant('remove' as const), i: fc.nat(4) }),
      fc.record({ kind: fc.constant('presence' as const), i: fc.nat(4) }),
      fc.record({ kind: fc.constant('presence' as const), i: fc.nat(4) }),
      fc.record({ kind: fc.constant('drop' as const), i: fc.nat(4) }),
      fc.record({ kind: fc.constant('reconnect' as const), i: fc.nat(4) }),
      fc.record({ kind: fc.constant('policy' as const), p: fc.nat(POLICIES.length - 1) }),
      // A change whose event comes late (another instance's, after later ones): the watermark waits.
      fc.record({ kind: fc.constant('late' as const), i: fc.nat(4), port: fc.nat(3) }),
      fc.record({ kind: fc.constant('release' as const) }),
      fc.record({ kind: fc.constant('flush' as const) }),
    );
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 50 }),
        fc.nat(POLICIES.length - 1),
        fc.array(fc.nat(TAG_SETS.length - 1), { minLength: base.length, maxLength: base.length }),
        (ops, first, tags) => {
          const present = new Map<string, DeviceState>(
            base.map((d, i) => [d.id, { ...d, tags: TAG_SETS[tags[i]!] }]),
          );
          let version = 1;
          let serial = 10;
          const hub = AccountHub.create(
            'acme',
            'z',
            0,
            serial,
            [...present.values()],
            [],
            [],
            AccountPolicy.build(version, POLICIES[first]!, present.values()),
          );
          hub.policyVersion = version;
          const sessions = new Map<string, FakeSession>();
          const away = new Map<string, Held>();
          let late: { serial: number; device: DeviceState }[] = [];
          // Odd devices speak capability 3 (compressed snapshots, presence lists), even ones 2.
          const compact = (id: string) => base.findIndex((b) => b.id === id) % 2 === 1;
          for (const d of present.values()) {
            const s = new FakeSession(d.id, serial, null, compact(d.id));
            hub.attach(s);
            sessions.set(d.id, s);
          }
          const change = (next: DeviceState) => {
            present.set(next.id, next);
            hub.applyChange({ kind: 'upsert', device: next }, ++serial);
          };
          for (const o of ops) {
            const d = 'i' in o ? base[o.i]! : undefined;
            const cur = d && present.get(d.id);
            if (o.kind === 'flush') hub.flush();
            else if (o.kind === 'release') {
              for (const l of late) hub.applyChange({ kind: 'upsert', device: l.device }, l.serial);
              late = [];
            } else if (o.kind === 'policy') {
              const policy = AccountPolicy.build(++version, POLICIES[o.p]!, present.values());
              for (const _ of policy.computeRelations());
              // As the ControlHub: the event's serial is counted, then the policy is read and used.
              hub.serials.accept(++serial, 'policy');
              hub.usePolicy(policy, serial);
            } else if (!d) continue;
            else if (o.kind === 'drop') {
              const s = sessions.get(d.id);
              if (!s?.held) continue;
              hub.detach(s);
              sessions.delete(d.id);
              away.set(d.id, s.held);
            } else if (o.kind === 'reconnect') {
              const held = away.get(d.id);
              if (!held || !present.has(d.id)) continue;
              away.delete(d.id);
              const s = new FakeSession(d.id, held.serial + 1, structuredClone(held), compact(d.id));
              const resume = held.token === null ? undefined : { token: held.token, lastSerial: held.serial };
              const how = hub.attach(s, resume);
              if (how) outcomes[how.how] += 1;
              sessions.set(d.id, s);
            } else if (o.kind === 'remove') {
              if (!cur) continue;
              present.delete(d.id);
              hub.applyChange({ kind: 'remove', deviceId: d.id }, ++serial);
              const s = sessions.get(d.id);
              if (s) hub.detach(s);
              sessions.delete(d.id);
              away.delete(d.id);
            } else {
              const from = cur ?? d;
              const next =
                o.kind === 'tag'
                  ? { ...from, tags: TAG_SETS[o.tags] }
                  : o.kind === 'rename'
                    ? { ...from, name: `${d.name}x${o.n}` }
                    : o.kind === 'presence'
                      ? { ...from, online: !from.online }
                      : { ...from, endpoints: [`192.0.2.${o.i + 1}:${41641 + o.port}`] };
              if (o.kind === 'late') {
                present.set(next.id, next);
                late.push({ serial: ++serial, device: next });
                continue;
              }
              change(next);
            }
          }
          for (const l of late) hub.applyChange({ kind: 'upsert', device: l.device }, l.serial);
          hub.flush();
          for (const [id, s] of sessions) sameView(s.held!, snapshotView(hub, id));
          // Everyone still away comes back now: resumed or not, each ends where a snapshot would.
          for (const [id, held] of away) {
            if (!present.has(id)) continue;
            const s = new FakeSession(id, held.serial + 1, structuredClone(held), compact(id));
            const how = hub.attach(
              s,
              held.token === null ? undefined : { token: held.token, lastSerial: held.serial },
            );
            if (how) outcomes[how.how] += 1;
            sameView(s.held!, snapshotView(hub, id));
          }
        },
      ),
      { numRuns: Number(process.env.TRELLIS_PROPERTY_RUNS ?? 300) },
    );
    // Both ways were taken, many times: the property is not met by always sending snapshots.
    expect(outcomes.resumed).toBeGreaterThan(50);
    expect(outcomes.snapshot).toBeGreaterThan(10);
    expect(compactSeen.compressed).toBeGreaterThan(50);
    expect(compactSeen.presence).toBeGreaterThan(30);
  });
});
