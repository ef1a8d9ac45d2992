import { API_PATHS, DeviceInfo, DeviceRemovedEvent, PROTOCOL_VERSION } from '@trellis/proto';
import { createBackend } from '../support/backends';
import { type EventStream, openEventStream } from '../support/event-stream';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

describe('the dashboard’s live device events', () => {
  let t: TestBroker;
  let dispose: () => Promise<void>;
  let password: string;

  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend, { eventsHeartbeatMs: 200 });
    password = 'owner-password-for-tests';
    const account = await t.broker.services.accounts.byName('default');
    await t.broker.services.users.resetOwner(account.id, password);
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  const cookieFor = async (email: string, pw: string) => {
    const res = await t.api('POST', API_PATHS.session, { body: { email, password: pw } });
    return {
      cookie: /^(__Host-trellis_session=[^;]+)/.exec(String(res.headers['set-cookie']))![1]!,
      csrf: res.json.csrfToken,
    };
  };
  const devicesIn = (s: EventStream) =>
    s.events.filter((e) => e.event === 'device').map((e) => DeviceInfo.parse(e.data));

  it('a watcher gets each device as it is added, comes online and is removed; a member only their own', async () => {
    const { cookie, csrf } = await cookieFor('admin@trellis.local', password);
    await t.addMember('viewer@default.test');
    const member = await cookieFor('viewer@default.test', 'member-pass-1');
    const owner = await openEventStream(t, { cookie });
    const viewer = await openEventStream(t, { cookie: member.cookie });
    expect(owner.status).toBe(200);

    const d = t.device();
    await d.enroll(t.setupKey, { hostname: 'live-box' });
    await waitUntil(() => devicesIn(owner).find((x) => x.id === d.id), 10_000, 'the new device');
    expect(devicesIn(owner).find((x) => x.id === d.id)).toMatchObject({ name: 'live-box', online: false });
    await d.connect();
    await waitUntil(
      () => devicesIn(owner).find((x) => x.id === d.id && x.online),
      10_000,
      'the device online',
    );

    const removed = await t.api('DELETE', `${API_PATHS.devices}/${d.id}`, {
      headers: { cookie, 'x-trellis-csrf': csrf },
    });
    expect(removed.status).toBe(200);
    await waitUntil(() => owner.events.find((e) => e.event === 'device-removed'), 10_000, 'the removal');
    expect(DeviceRemovedEvent.parse(owner.events.find((e) => e.event === 'device-removed')!.data)).toEqual({
      id: d.id,
    });
    // The member was told of no device of the owner's.
    expect(devicesIn(viewer)).toEqual([]);
    expect(viewer.events.filter((e) => e.event === 'device-removed')).toEqual([]);

    // A device of the member's own: shown to them, and its removal too.
    const started = await t.api('POST', API_PATHS.deviceAuth, {
      body: {
        protocolVersion: PROTOCOL_VERSION,
        publicKey: t.device().keys.publicKey,
        hostname: 'viewers-box',
        os: 'linux',
      },
    });
    const approved = await t.api('POST', API_PATHS.deviceAuthRequests, {
      headers: { cookie: member.cookie, 'x-trellis-csrf': member.csrf },
      body: { userCode: started.json.userCode, approve: true },
    });
    expect(approved.status).toBe(200);
    const theirs = approved.json.deviceId as string;
    await waitUntil(() => devicesIn(viewer).find((x) => x.id === theirs), 10_000, "the member's device");
    await t.api('DELETE', `${API_PATHS.devices}/${theirs}`, { headers: { cookie, 'x-trellis-csrf': csrf } });
    await waitUntil(
      () =>
        viewer.events.find((e) => e.event === 'device-removed' && (e.data as { id: string }).id === theirs),
      10_000,
      "the member's device removed",
    );
    owner.close();
    viewer.close();
    await waitUntil(
      () => (t.broker.dashboardWatchers() === 0 ? true : undefined),
      10_000,
      'no watchers left',
    );
  });

  it('needs a session, and ends when the session does', async () => {
    const none = await openEventStream(t, {});
    expect(none.status).toBe(401);
    const { cookie, csrf } = await cookieFor('admin@trellis.local', password);
    const stream = await openEventStream(t, { cookie });
    expect(stream.status).toBe(200);
    await t.api('DELETE', API_PATHS.session, { headers: { cookie, 'x-trellis-csrf': csrf } });
    await stream.ended;
  });
});
