import { API_PATHS, AuditPage, BROKER_FEATURES, ErrorBody, type NetmapPeer, RouteList } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { type TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

/** Gateways (issue 14): devices advertise routes, admins approve them, peers' netmaps follow. */
describe.each(BACKENDS)('routes on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  let member: string;
  let accountId: string;
  let gw: TestDevice;
  let client: TestDevice;

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
    member = await t.addMember('member@routes.test');
    accountId = (await t.broker.services.accounts.byName('default')).id;
    gw = t.device();
    await gw.enroll(t.setupKey, { name: 'gw' });
    client = t.device();
    await client.enroll(t.setupKey, { name: 'laptop' });
    await gw.connect();
    await client.connect();
  });
  afterAll(async () => {
    gw?.close();
    client?.close();
    await t?.close();
    await backend?.dispose();
  });

  const list = async (token = t.ownerToken) =>
    RouteList.parse((await t.api('GET', API_PATHS.routes, { token })).json).routes;
  const approve = (approved: unknown, device = 'gw', token = t.ownerToken) =>
    t.api('PUT', `${API_PATHS.devices}/${device}/routes`, { token, body: { approved } });
  const serial = async () => (await t.broker.services.devices.accountSerials([accountId])).get(accountId);
  /** Messages are handled in order: once the pong is back, what was sent before it is done. */
  const settled = async (d: TestDevice) => {
    const from = d.messages.length;
    d.send({ type: 'ping', t: 1 });
    await d.waitFor((m) => m.type === 'pong', from);
  };
  const gwRoutes = (peers: Map<string, NetmapPeer>) => peers.get(gw.id)?.routes;
  const lastSelfRoutes = () => {
    const withSelf = gw.messages.filter((m) => (m.type === 'netmap' || m.type === 'delta') && m.self);
    const last = withSelf.at(-1);
    return last && (last.type === 'netmap' || last.type === 'delta') ? last.self?.routes : undefined;
  };

  it('lists routes in its features; an advertisement is stored pending; the same one again costs no serial', async () => {
    const challenge = gw.messages.find((m) => m.type === 'challenge');
    expect(challenge?.type === 'challenge' && challenge.features).toContain(BROKER_FEATURES.routes);
    gw.send({ type: 'advertise', routes: ['10.1.0.0/24', '0.0.0.0/0'] });
    await settled(gw);
    const rows = await list();
    expect(rows.map((r) => [r.prefix, r.deviceName, r.advertised, r.approved, r.primary])).toEqual([
      ['0.0.0.0/0', 'gw', true, false, false],
      ['10.1.0.0/24', 'gw', true, false, false],
    ]);
    await waitUntil(() => (lastSelfRoutes()?.length === 2 ? true : undefined), 15_000, 'self routes');
    expect(lastSelfRoutes()).toEqual([
      { prefix: '0.0.0.0/0', approved: false },
      { prefix: '10.1.0.0/24', approved: false },
    ]);
    const before = await serial();
    gw.send({ type: 'advertise', routes: ['0.0.0.0/0', '10.1.0.0/24'] });
    await settled(gw);
    expect(await serial()).toBe(before);
    expect(client.peers.get(gw.id)?.routes).toBeUndefined();
  });

  it('an admin approves: the route reaches peers, the log has it; members are refused; errors are clear', async () => {
    expect((await approve(['10.1.0.0/24'], 'gw', member)).status).toBe(403);
    const bad = await approve(['10.1.0.1/24']);
    expect(bad.status).toBe(400);
    expect(ErrorBody.parse(bad.json).message).toMatch(/approved\.0: must have its host bits clear/);
    expect((await approve(['10.1.0.0/24'], 'no-such-device')).status).toBe(404);

    const res = await approve(['10.1.0.0/24']);
    expect(res.status).toBe(200);
    const rows = RouteList.parse(res.json).routes;
    expect(rows.find((r) => r.prefix === '10.1.0.0/24')).toMatchObject({
      approved: true,
      primary: true,
      online: true,
    });
    await client.waitForPeers((p) => gwRoutes(p)?.[0]?.prefix === '10.1.0.0/24');
    expect(gwRoutes(client.peers)).toEqual([{ prefix: '10.1.0.0/24', since: expect.any(Number) }]);

    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=routes.approved`, { token: t.ownerToken })).json,
    );
    expect(log.events[0]).toMatchObject({
      target: { kind: 'device', name: 'gw' },
      details: { before: [], after: ['10.1.0.0/24'] },
    });
    // A member sees the routes of their own devices only (none here).
    expect(await list(member)).toEqual([]);
  });

  it('a peer loses the route while it is down, and when it is withdrawn; the approval waits for it', async () => {
    gw.send({ type: 'advertise', routes: ['10.1.0.0/24', '0.0.0.0/0'], down: ['10.1.0.0/24'] });
    await client.waitForPeers((p) => gwRoutes(p) === undefined);
    expect((await list()).find((r) => r.prefix === '10.1.0.0/24')).toMatchObject({
      down: true,
      primary: false,
    });

    gw.send({ type: 'advertise', routes: ['10.1.0.0/24', '0.0.0.0/0'] });
    await client.waitForPeers((p) => gwRoutes(p)?.length === 1);

    gw.send({ type: 'advertise', routes: ['0.0.0.0/0'] });
    await client.waitForPeers((p) => gwRoutes(p) === undefined);
    expect((await list()).find((r) => r.prefix === '10.1.0.0/24')).toMatchObject({
      advertised: false,
      approved: true,
      since: null,
    });
    // Comes back: served again at once, since its return.
    gw.send({ type: 'advertise', routes: ['0.0.0.0/0', '10.1.0.0/24'] });
    await client.waitForPeers((p) => gwRoutes(p)?.length === 1);
  });

  it('unapproving takes the route from peers; an approved prefix nobody advertises is dropped when unapproved', async () => {
    expect((await approve(['10.1.0.0/24', '10.9.0.0/24'])).status).toBe(200);
    expect((await list()).find((r) => r.prefix === '10.9.0.0/24')).toMatchObject({
      advertised: false,
      approved: true,
    });
    const res = await approve([]);
    expect(RouteList.parse(res.json).routes.map((r) => [r.prefix, r.approved])).toEqual([
      ['0.0.0.0/0', false],
      ['10.1.0.0/24', false],
    ]);
    await client.waitForPeers((p) => gwRoutes(p) === undefined);
  });

  it('the policy auto-approves: tagging approves the exit node at once, then what the tag may serve as it is advertised', async () => {
    const policy = JSON.stringify({
      tagOwners: { 'tag:exit': [] },
      rules: [{ src: ['*'], dst: ['*'] }],
      autoApprovers: { exitNode: ['tag:exit'], routes: { '10.5.0.0/16': ['tag:exit'] } },
    });
    expect(
      (await t.api('PUT', API_PATHS.policy, { token: t.ownerToken, body: { text: policy } })).status,
    ).toBe(200);
    expect(
      (
        await t.api('PUT', `${API_PATHS.devices}/gw/tags`, {
          token: t.ownerToken,
          body: { tags: ['tag:exit'] },
        })
      ).status,
    ).toBe(200);
    // Advertised already (pending): the tag approves it.
    await client.waitForPeers((p) => gwRoutes(p)?.[0]?.prefix === '0.0.0.0/0');
    gw.send({ type: 'advertise', routes: ['0.0.0.0/0', '10.5.0.0/16', '10.1.0.0/24'] });
    await client.waitForPeers((p) => gwRoutes(p)?.length === 2);
    expect(gwRoutes(client.peers)?.map((r) => r.prefix)).toEqual(['0.0.0.0/0', '10.5.0.0/16']);
    const rows = await list();
    expect(rows.map((r) => [r.prefix, r.approved, r.autoApproved])).toEqual([
      ['0.0.0.0/0', true, true],
      ['10.1.0.0/24', false, false],
      ['10.5.0.0/16', true, true],
    ]);
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=routes.auto-approved`, { token: t.ownerToken })).json,
    );
    expect(log.events.map((e) => [e.actor.kind, e.details.prefixes, e.details.withdrawn])).toEqual([
      ['device', ['10.5.0.0/16'], []],
      ['user', ['0.0.0.0/0'], []],
    ]);
  });

  it('an offline gateway is no primary; its routes stay in its peers’ netmap marked offline', async () => {
    gw.close();
    await client.waitForPeers((p) => p.get(gw.id)?.online === false);
    expect(gwRoutes(client.peers)?.length).toBe(2);
    expect((await list()).every((r) => !r.primary && !r.online)).toBe(true);
    // Back: the device-upsert of its connection still carries its routes.
    await gw.connect();
    await client.waitForPeers((p) => p.get(gw.id)?.online === true);
    expect(gwRoutes(client.peers)?.length).toBe(2);
  });
  it('a new policy version withdraws, or grants, auto-approvals at once', async () => {
    const withRules = (autoApprovers?: object) =>
      JSON.stringify({
        tagOwners: { 'tag:exit': [] },
        rules: [{ src: ['*'], dst: ['*'] }],
        ...(autoApprovers ? { autoApprovers } : {}),
      });
    const apply = async (text: string) =>
      expect((await t.api('PUT', API_PATHS.policy, { token: t.ownerToken, body: { text } })).status).toBe(
        200,
      );
    await apply(withRules());
    await client.waitForPeers((p) => gwRoutes(p) === undefined);
    expect((await list()).filter((r) => r.approved)).toEqual([]);
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=routes.auto-approved`, { token: t.ownerToken })).json,
    );
    expect(log.events[0]!.details).toMatchObject({ prefixes: [], withdrawn: ['0.0.0.0/0', '10.5.0.0/16'] });
    await apply(withRules({ exitNode: ['tag:exit'] }));
    await client.waitForPeers((p) => gwRoutes(p)?.[0]?.prefix === '0.0.0.0/0');
    expect((await list()).filter((r) => r.approved).map((r) => r.prefix)).toEqual(['0.0.0.0/0']);
  });
});
