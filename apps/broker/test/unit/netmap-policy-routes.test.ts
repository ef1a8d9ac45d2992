import { DeltaMessage, type DeviceState, EXIT_ROUTE, NetmapMessage, type PeerAccess } from '@trellis/proto';
import { AccountNetmap } from '../../src/domain/netmap-builder';
import { AllowAllPolicy, sameRelation } from '../../src/domain/netmap-policy';
import { AccountPolicy, policyDeviceOf } from '../../src/policy/account-policy';
import { deviceState as device } from '../support/device-state';

const POLICY = `{
  "tagOwners": { "tag:eng": [], "tag:router": [] },
  "autoApprovers": { "routes": { "192.168.0.0/16": ["tag:router"] }, "exitNode": ["tag:router"] },
  "rules": [{ "src": ["tag:eng"], "dst": ["192.168.1.0/24"], "ports": ["tcp:80"] }]
}`;
const WEB = [{ proto: 'tcp' as const, ports: [[80, 80]] as [number, number][] }];
const LAN = [{ prefix: '192.168.1.0/24', rules: WEB }];

const serving = (d: DeviceState, approved: boolean, down?: true): DeviceState => ({
  ...d,
  routes: [{ prefix: '192.168.1.0/24', approved, since: 5, ...(down ? { down } : {}) }],
});

const byPeer = (access: readonly PeerAccess[] | undefined) =>
  new Map((access ?? []).flatMap((a) => a.peers.map((p) => [p, a] as const)));

describe('the policy and routes in the broker', () => {
  const eng = { ...device('eng1', '100.64.0.1'), tags: ['tag:eng'] };
  const gwOff = { ...device('gw1', '100.64.0.2'), tags: ['tag:router'] };
  const gw = serving(gwOff, true);

  it('policyDeviceOf keeps approved routes, down or not', () => {
    expect(policyDeviceOf(gwOff).routes).toBeUndefined();
    expect(policyDeviceOf(serving(gwOff, false)).routes).toBeUndefined();
    expect(policyDeviceOf(serving(gwOff, true, true)).routes).toEqual(['192.168.1.0/24']);
  });

  it('AccountPolicy relates a client and a gateway through its routes, and auto-approves', () => {
    const p = AccountPolicy.build(1, POLICY, [eng, gw]);
    const r = p.relation(p.classOf(eng.id)!, p.classOf(gw.id)!)!;
    expect(r).toMatchObject({ in: [], out: [], routesOut: LAN });
    expect(r.routesIn).toBeUndefined();
    expect(p.relation(p.classOf(gw.id)!, p.classOf(eng.id)!)).toMatchObject({ routesIn: LAN });
    expect(sameRelation(r, { in: [], out: [] })).toBe(false);
    expect(sameRelation(r, { in: [], out: [], routesOut: LAN })).toBe(true);
    expect(p.autoApproves(gwOff, '192.168.1.0/24')).toBe(true);
    expect(p.autoApproves(gwOff, EXIT_ROUTE)).toBe(true);
    expect(p.autoApproves(eng, '192.168.1.0/24')).toBe(false);
    expect(AccountPolicy.build(1, '{ nope', [gw]).autoApproves(gwOff, '192.168.1.0/24')).toBe(false);
  });

  it('AllowAllPolicy gives every route to the pairs with a gateway, as the default policy does', () => {
    const none = new AllowAllPolicy();
    for (const d of [eng, gw]) none.upsert(d);
    const [e, g] = [none.classOf(eng.id)!, none.classOf(gw.id)!];
    // Each route by name: EXIT_ROUTE would be the exit route alone.
    const all = [{ prefix: '192.168.1.0/24', rules: [{}] }];
    expect(none.relation(e, e)).toEqual(expect.not.objectContaining({ routesOut: expect.anything() }));
    expect(none.relation(e, g)).toMatchObject({ routesOut: all });
    expect(none.relation(g, e)).toMatchObject({ routesIn: all });
    const dflt = AccountPolicy.build(1, '{ "rules": [{ "src": ["*"], "dst": ["*"] }] }', [eng, gw]);
    expect(
      sameRelation(none.relation(e, g), dflt.relation(dflt.classOf(eng.id)!, dflt.classOf(gw.id)!)),
    ).toBe(true);
    // An exit node that serves a subnet: both routes, by name, still as the default policy.
    const both: DeviceState = {
      ...serving(gwOff, true),
      id: 'gw2',
      routes: [
        { prefix: '192.168.1.0/24', approved: true, since: 5 },
        { prefix: EXIT_ROUTE, approved: true, since: 5 },
      ],
    };
    none.upsert(both);
    const x = none.classOf('gw2')!;
    expect(x).not.toBe(g);
    expect(none.relation(e, x).routesOut?.map((r) => r.prefix)).toEqual([EXIT_ROUTE, '192.168.1.0/24']);
    const dflt2 = AccountPolicy.build(1, '{ "rules": [{ "src": ["*"], "dst": ["*"] }] }', [eng, both]);
    expect(
      sameRelation(none.relation(e, x), dflt2.relation(dflt2.classOf(eng.id)!, dflt2.classOf('gw2')!)),
    ).toBe(true);
  });

  function build(text = POLICY, gateway: DeviceState = gwOff) {
    const m = new AccountNetmap(
      'acme',
      'trellis.internal',
      10,
      [],
      AccountPolicy.build(1, text, [eng, gateway]),
    );
    for (const d of [eng, gateway]) m.upsert(d);
    m.takeChanges();
    return m;
  }

  it('snapshots carry routesOut to the client and routesIn to the gateway', () => {
    const m = build(POLICY, gw);
    const client = NetmapMessage.parse(JSON.parse(m.snapshotFrame(eng.id, 10)!));
    expect(byPeer(client.access).get(gw.id)).toEqual({ peers: [gw.id], in: [], out: [], routesOut: LAN });
    const own = NetmapMessage.parse(JSON.parse(m.snapshotFrame(gw.id, 10)!));
    expect(byPeer(own.access).get(eng.id)).toEqual({ peers: [eng.id], in: [], out: [], routesIn: LAN });
  });

  it('an approval brings the gateway to the client in a delta with its route access; a resume too', () => {
    const m = build();
    expect(m.canSee(eng.id, gwOff.id)).toBe(false);
    m.upsert(gw, 11);
    const batch = m.takeChanges();
    const delta = DeltaMessage.parse(JSON.parse(m.batchFrame(batch, eng.id, 11)!.frame));
    expect(delta.upsert.map((p) => p.id)).toEqual([gw.id]);
    expect(delta.access).toEqual([{ peers: [gw.id], in: [], out: [], routesOut: LAN }]);
    // Its own class changed: the gateway gets its whole netmap again, with routesIn.
    const own = m.batchFrame(batch, gw.id, 11)!;
    expect(own.type).toBe('netmap');
    expect(byPeer(NetmapMessage.parse(JSON.parse(own.frame)).access).get(eng.id)?.routesIn).toEqual(LAN);
    const resumed = m.resumeFrame(eng.id, { cursor: 10, base: 10 }, 12);
    const frame = DeltaMessage.parse(JSON.parse((resumed as { frame: string }).frame));
    expect(frame.access).toEqual([{ peers: [gw.id], in: [], out: [], routesOut: LAN }]);
  });

  it('a policy change that opens a route reaches both sides as a delta', () => {
    const m = build(POLICY.replace('192.168.1.0/24', '10.9.0.0/16'), gw);
    expect(m.canSee(eng.id, gw.id)).toBe(false);
    const bodies = m.setPolicy(AccountPolicy.build(2, POLICY, [eng, gw], m.policyInForce));
    expect(bodies.get(eng.id)?.access).toEqual([{ peers: [gw.id], in: [], out: [], routesOut: LAN }]);
    expect(bodies.get(gw.id)?.access).toEqual([{ peers: [eng.id], in: [], out: [], routesIn: LAN }]);
  });
});
