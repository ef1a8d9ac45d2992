import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALLOW_ALL, EXIT_ROUTE, type NetmapPeer, OVERLAY_PREFIX } from '@trellis/proto';
import pino from 'pino';
import type { Netmap, PeerRules } from '../../src/control/netmap-tracker';
import type { ExitNodeInput } from '../../src/exit/exit-node-controller';
import { wgUpdateForEffect } from '../../src/path';
import {
  DEFAULT_GATEWAY_PREFS,
  type FullGatewayPrefs,
  GatewaySettings,
} from '../../src/routes/gateway-prefs';
import {
  type ExitNodeLike,
  GATEWAY_KEEPALIVE_SECONDS,
  RouteDriver,
  type RouteDriverDeps,
} from '../../src/routes/route-driver';
import type { KeepOut } from '../../src/routes/route-selector';
import { FakeWireGuard } from '../helpers/fake-wireguard';

const PREFIX = '192.168.1.0/24';

function gatewayPeer(id: string, n: number, since: number): NetmapPeer {
  return {
    id,
    name: `gw-${id}`,
    dnsName: `gw-${id}.acme.test`,
    publicKey: `${id.repeat(43)}=`,
    address: `100.64.0.${n}`,
    allowedIps: [`100.64.0.${n}/32`],
    endpoints: [],
    online: true,
    routes: [{ prefix: PREFIX, since }],
  };
}

/** A mesh of two gateways for one prefix (b served it first), driven as MeshSession drives it. */
function setup(
  prefs: FullGatewayPrefs = DEFAULT_GATEWAY_PREFS,
  systemHosts: KeepOut[] = [],
  more: Partial<RouteDriverDeps> = {},
) {
  const a = gatewayPeer('a', 2, 200);
  const b = gatewayPeer('b', 3, 100);
  const peers = [a, b];
  const rules: PeerRules = { in: [], out: [], routesOut: [{ prefix: PREFIX, rules: ALLOW_ALL }] };
  const netmap: Netmap = {
    serial: 1,
    self: {
      id: 'self',
      name: 'me',
      dnsName: 'me.acme.test',
      address: '100.64.0.1',
      accountName: 'acme',
      overlayPrefix: OVERLAY_PREFIX,
    },
    peers,
    access: new Map([
      ['a', rules],
      ['b', rules],
    ]),
    virtual: [],
  };
  const wg = new FakeWireGuard();
  const routeCalls: string[][] = [];
  const exitInputs: ExitNodeInput[] = [];
  const exit: ExitNodeLike = {
    apply: async (i) => {
      exitInputs.push(i);
    },
    remove: async () => undefined,
    status: () => null,
  };
  let applies = 0;
  const driver: RouteDriver = new RouteDriver({
    interfaceName: 'trellis0',
    backend: wg,
    network: {
      apply: async () => undefined,
      remove: async () => undefined,
      setRoutes: async (_i, p) => {
        routeCalls.push([...p]);
      },
      keepOutHosts: async () => systemHosts,
    },
    prefs: () => prefs,
    localSubnets: () => ['10.0.0.0/24'],
    bypass: () => ['192.0.2.1'],
    exit,
    run: (job) => job(),
    reapply: () => void applyMesh(),
    logger: pino({ level: 'silent' }),
    ...more,
  });
  async function applyMesh(): Promise<void> {
    applies++;
    driver.select(netmap, peers);
    await wg.apply({
      peers: peers.map((p) => ({
        publicKey: p.publicKey,
        allowedIps: [...p.allowedIps, ...driver.extraAllowedIps(p.id)],
      })),
    });
    await driver.applyInQueue(netmap, peers, []);
  }
  const row = async (id: string) =>
    (await wg.getState()).peers.find((p) => p.publicKey === `${id.repeat(43)}=`)!;
  /** One second of traffic: keepalives both ways from live gateways, ours only towards dead ones. */
  const second = async (dead: Set<string>) => {
    for (const id of ['a', 'b']) {
      const r = await row(id);
      r.txBytes += 32;
      if (!dead.has(id)) r.rxBytes += 32;
    }
    await jest.advanceTimersByTimeAsync(1000);
  };
  return { driver, wg, peers, rules, applyMesh, row, second, routeCalls, exitInputs, applies: () => applies };
}

describe('RouteDriver', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('gives the prefix to the preferred gateway, with the fast keepalive on both', async () => {
    const t = setup();
    await t.applyMesh();
    expect((await t.row('b')).allowedIps).toEqual(['100.64.0.3/32', PREFIX]);
    expect((await t.row('a')).allowedIps).toEqual(['100.64.0.2/32']);
    expect(t.routeCalls.at(-1)).toEqual([PREFIX]);
    // Even the standby, whose path may be idle: a hot standby whose liveness is known.
    expect((await t.row('a')).persistentKeepalive).toBe(GATEWAY_KEEPALIVE_SECONDS);
    expect((await t.row('b')).persistentKeepalive).toBe(GATEWAY_KEEPALIVE_SECONDS);
    // From 25 s (the path logic's), off first: WireGuard starts the 2 s rhythm only from off.
    const key = `${'a'.repeat(43)}=`;
    await t.wg.apply({ peers: [{ publicKey: key, persistentKeepalive: 25 }] });
    const apply = jest.spyOn(t.wg, 'apply');
    await t.applyMesh();
    const keepalives = apply.mock.calls.flatMap(([u]) =>
      u.peers.filter((p) => p.persistentKeepalive !== undefined),
    );
    expect(keepalives).toEqual([
      { publicKey: key, persistentKeepalive: 0 },
      { publicKey: key, persistentKeepalive: 2 },
    ]);
    expect(t.driver.keepaliveOf(`${'b'.repeat(43)}=`)).toEqual({ on: 2, off: 2 });
    expect(t.driver.keepaliveOf('someone-else')).toEqual({ on: 25, off: 0 });
  });

  it('fails over within 10 s of the primary going silent, moving only allowed IPs, and goes back', async () => {
    const t = setup();
    await t.applyMesh();
    const dead = new Set<string>();
    for (let i = 0; i < 3; i++) await t.second(dead);
    const routesBefore = t.routeCalls.length;
    dead.add('b');
    let took = 0;
    while ((await t.row('a')).allowedIps.length === 1 && took < 15) {
      await t.second(dead);
      took++;
    }
    expect(took).toBeLessThanOrEqual(10);
    expect((await t.row('a')).allowedIps).toEqual(['100.64.0.2/32', PREFIX]);
    expect((await t.row('b')).allowedIps).toEqual(['100.64.0.3/32']);
    // Same kernel routes every time: a failover is a WireGuard change only.
    expect(new Set(t.routeCalls.slice(routesBefore).map((r) => r.join()))).toEqual(new Set([PREFIX]));
    expect(t.driver.rows()[0]).toMatchObject({
      via: 'gw-a',
      gateways: [
        { name: 'gw-b', alive: false },
        { name: 'gw-a', alive: true },
      ],
    });
    dead.clear();
    await t.second(dead);
    await t.second(dead);
    expect((await t.row('b')).allowedIps).toEqual(['100.64.0.3/32', PREFIX]);
  });

  it('after a gateway restarts, waits for its new tunnel to answer before going back to it', async () => {
    const t = setup();
    await t.applyMesh();
    const none = new Set<string>();
    for (let i = 0; i < 3; i++) await t.second(none);
    t.peers[1]!.online = false; // the broker lost b
    await t.applyMesh();
    expect((await t.row('a')).allowedIps).toEqual(['100.64.0.2/32', PREFIX]);
    await t.second(none); // its old tunnel still answers: proves nothing about the restarted one
    t.peers[1]!.online = true;
    await t.applyMesh();
    expect((await t.row('a')).allowedIps).toEqual(['100.64.0.2/32', PREFIX]);
    const silent = new Set(['b']);
    await t.second(silent);
    await t.second(silent);
    expect((await t.row('a')).allowedIps).toEqual(['100.64.0.2/32', PREFIX]);
    await t.second(none); // the new tunnel answers
    expect((await t.row('b')).allowedIps).toEqual(['100.64.0.3/32', PREFIX]);
  });

  it('does not sample while no choice depends on liveness', async () => {
    const t = setup({ ...DEFAULT_GATEWAY_PREFS, acceptRoutes: false });
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([]);
    for (let i = 0; i < 10; i++) await t.second(new Set(['a', 'b']));
    expect(t.applies()).toBe(1);
  });

  it('tells the exit node controller why a chosen exit node is unusable, and removes everything on close', async () => {
    const t = setup({ ...DEFAULT_GATEWAY_PREFS, exitNode: 'gw-a' });
    await t.applyMesh();
    expect(t.exitInputs.at(-1)).toEqual({
      interfaceName: 'trellis0',
      wanted: 'gw-a',
      chosen: null,
      active: false,
      allowLan: true,
      bypass: ['192.0.2.1'],
      unavailable: 'not-exit-node',
    });
    await t.driver.closeInQueue();
    expect(t.routeCalls.at(-1)).toEqual([]);
    expect(t.driver.rows()).toEqual([]);
  });
});

describe('RouteDriver pinning the exit node', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-exit-pin-'));
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['setImmediate', 'nextTick'] });
  });
  afterEach(async () => {
    jest.useRealTimers();
    await rm(dir, { recursive: true });
  });

  it('pins the chosen device; one that takes its name later gets nothing until chosen again', async () => {
    const settings = new GatewaySettings(dir);
    await settings.load();
    await settings.change({ exitNode: 'gw-a' });
    const t = setup(DEFAULT_GATEWAY_PREFS, [], { prefs: () => settings.current, exitNodePins: settings });
    const exitRoute = { prefix: EXIT_ROUTE, since: 1 };
    for (const p of t.peers) p.routes!.push(exitRoute);
    t.rules.routesOut!.push({ prefix: EXIT_ROUTE, rules: ALLOW_ALL });
    await t.applyMesh();
    expect(t.exitInputs.at(-1)).toMatchObject({ wanted: 'gw-a', chosen: { id: 'a' }, active: true });
    expect(settings.exitNodePin()).toEqual({ id: 'a', publicKey: t.peers[0]!.publicKey });
    expect(t.driver.extraAllowedIps('a')).toContain(EXIT_ROUTE);

    // gw-a is removed and b is renamed to it: no exit route for b, and status says why.
    const [a] = t.peers.splice(0, 1);
    t.peers[0]!.name = 'gw-a';
    await t.applyMesh();
    expect(t.exitInputs.at(-1)).toMatchObject({ chosen: null, active: false, unavailable: 'replaced' });
    expect(t.driver.extraAllowedIps('b')).not.toContain(EXIT_ROUTE);

    // The chosen device back with another key and no proof: still nothing.
    t.peers.push({ ...a!, publicKey: `${'z'.repeat(43)}=` });
    await t.applyMesh();
    expect(t.exitInputs.at(-1)).toMatchObject({ chosen: null, unavailable: 'key-changed' });
    expect(t.driver.extraAllowedIps('a')).not.toContain(EXIT_ROUTE);
    expect(t.driver.extraAllowedIps('b')).not.toContain(EXIT_ROUTE);

    // Choosing gw-a again pins the device that has the name now.
    t.peers.pop();
    await settings.change({ exitNode: 'gw-a' });
    await t.applyMesh();
    expect(t.exitInputs.at(-1)).toMatchObject({ chosen: { id: 'b' }, active: true });
    expect(settings.exitNodePin()).toEqual({ id: 'b', publicKey: t.peers[0]!.publicKey });
    expect(t.driver.extraAllowedIps('b')).toContain(EXIT_ROUTE);
  });
});

describe('RouteDriver keeping routes off hosts they would loop', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it("leaves out a prefix covering a peer's public or live WireGuard endpoint, re-checked each apply", async () => {
    const t = setup();
    const reflexive = (endpoint: string) => ({ endpoint, kind: 'reflexive' as const, priority: 1 });
    // Its own LAN address, a candidate inside the prefix it serves, is no reason.
    t.peers[0]!.candidates = [{ endpoint: '192.168.1.1:51820', kind: 'lan', priority: 2 }];
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([PREFIX]);
    t.peers[0]!.candidates = [reflexive('192.168.1.7:51820')];
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([]);
    expect(t.driver.rows()[0]).toMatchObject({
      installed: false,
      reason: "covers peer gw-a's endpoint 192.168.1.7",
    });
    // The endpoint moved out of the prefix: the route comes back.
    t.peers[0]!.candidates = [reflexive('198.51.100.7:51820')];
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([PREFIX]);
    // Roaming shows only in WireGuard's own endpoint, read on the apply before.
    await t.wg.apply({ peers: [{ publicKey: `${'b'.repeat(43)}=`, endpoint: '192.168.1.9:41641' }] });
    await t.applyMesh();
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([]);
    expect(t.driver.rows()[0]).toMatchObject({ reason: "covers peer gw-b's endpoint 192.168.1.9" });
  });

  it('never installs a prefix covering the default gateway or a DNS server, nor a broker address', async () => {
    const hosts = [{ address: '192.168.1.53', what: 'the DNS server' }];
    const t = setup(DEFAULT_GATEWAY_PREFS, hosts);
    await t.applyMesh();
    await jest.advanceTimersByTimeAsync(0); // the apply it queued
    // The first apply read them and selected again before routing anything.
    expect(t.routeCalls).toEqual([[]]);
    expect(t.driver.rows()[0]).toMatchObject({ reason: 'covers the DNS server 192.168.1.53' });
    hosts.length = 0;
    t.peers[1]!.routes = [{ prefix: '192.0.2.0/24', since: 1 }];
    t.rules.routesOut!.push({ prefix: '192.0.2.0/24', rules: ALLOW_ALL });
    await t.applyMesh();
    await t.applyMesh();
    expect(t.routeCalls.at(-1)).toEqual([PREFIX]);
    expect(t.driver.rows().find((r) => r.prefix === '192.0.2.0/24')).toMatchObject({
      installed: false,
      reason: 'covers the broker, relay or reflector 192.0.2.1',
    });
  });
});

describe('wgUpdateForEffect with a gateway keepalive', () => {
  it("keeps a gateway's 2 s keepalive on even when its path goes idle", () => {
    const base = { peerId: 'a', publicKey: 'k' };
    const pinned = { on: 2, off: 2 };
    expect(wgUpdateForEffect({ type: 'keepalive', ...base, on: true }, [], pinned)).toEqual({
      peers: [{ publicKey: 'k', persistentKeepalive: 2 }],
    });
    expect(wgUpdateForEffect({ type: 'keepalive', ...base, on: false }, [], pinned)).toEqual({
      peers: [{ publicKey: 'k', persistentKeepalive: 2 }],
    });
    expect(
      wgUpdateForEffect(
        { type: 'readd-peer', ...base, endpoint: '192.0.2.1:51820' },
        ['100.64.0.2/32'],
        pinned,
      ).peers[1],
    ).toMatchObject({ persistentKeepalive: 2 });
  });
});
