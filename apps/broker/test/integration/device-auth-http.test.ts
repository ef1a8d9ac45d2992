import { API_PATHS, type DeviceAuthResponse, EnrollResponse, PROTOCOL_VERSION } from '@trellis/proto';
import { BACKENDS, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

describe.each(BACKENDS)('sign in once over HTTP (RFC 8628) on %s', (kind) => {
  let t: TestBroker & { logs: { lines: Array<Record<string, unknown>> } };
  let dispose: () => Promise<void>;

  beforeEach(async () => {
    const backend = await createBackend(kind);
    t = await startTestBroker(backend, { deviceAuthIntervalSeconds: 1, deviceAuthPollsPerMinute: 20 });
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterEach(() => dispose());

  const start = (device: TestDevice, extra: Record<string, unknown> = {}) =>
    t.api('POST', API_PATHS.deviceAuth, {
      body: {
        protocolVersion: PROTOCOL_VERSION,
        publicKey: device.keys.publicKey,
        name: 'laptop',
        hostname: 'laptop.local',
        os: 'linux 6.1',
        ...extra,
      },
    });
  const poll = (deviceCode: string) => t.api('POST', API_PATHS.deviceAuthToken, { body: { deviceCode } });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('a device signs in: codes, pending polls, the user approves, the poll gets the enrollment and the device connects', async () => {
    const device = t.device();
    const res = await start(device);
    expect(res.status).toBe(200);
    const started = res.json as DeviceAuthResponse;
    expect(started.verificationUri).toBe(`${t.broker.url}/device`);
    // The code rides in the fragment, which browsers never send: no server log ever sees it.
    expect(started.verificationUriComplete).toBe(`${t.broker.url}/device#code=${started.userCode}`);
    expect(started.interval).toBe(1);

    const pending = await poll(started.deviceCode);
    expect(pending.status).toBe(400);
    expect(pending.json).toMatchObject({ code: 'authorization_pending' });

    // The user types the code as they read it, in any case.
    const typed = started.userCode.toLowerCase();
    const info = await t.api('GET', `${API_PATHS.deviceAuthRequests}/${typed}`, { token: t.ownerToken });
    expect(info.status).toBe(200);
    expect(info.json).toMatchObject({
      hostname: 'laptop.local',
      os: 'linux 6.1',
      publicKey: device.keys.publicKey,
    });
    const decided = await t.api('POST', API_PATHS.deviceAuthRequests, {
      token: t.ownerToken,
      body: { userCode: typed, approve: true },
    });
    expect(decided.status).toBe(200);
    expect(decided.json).toMatchObject({ approved: true, name: 'laptop' });

    await sleep(1000);
    const granted = await poll(started.deviceCode);
    expect(granted.status).toBe(200);
    device.enrollment = EnrollResponse.parse(granted.json);
    expect(device.enrollment.deviceId).toBe(decided.json.deviceId);
    const netmap = await device.connect();
    expect(netmap.self.name).toBe('laptop');
    const list = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
    expect(list.json).toEqual([expect.objectContaining({ name: 'laptop', user: 'admin@trellis.local' })]);

    await sleep(1000);
    expect((await poll(started.deviceCode)).json).toMatchObject({ code: 'expired_token' });
    // Neither code is ever logged.
    const logged = JSON.stringify(t.logs.lines);
    expect(logged).not.toContain(started.deviceCode);
    expect(logged).not.toContain(started.userCode);
    expect(logged).toContain('device enrolled (signed in)');
  });

  it('looking up and deciding need a signed-in user; a member approves a device of their own and sees only theirs', async () => {
    const started = (await start(t.device())).json as DeviceAuthResponse;
    const path = `${API_PATHS.deviceAuthRequests}/${started.userCode}`;
    expect((await t.api('GET', path)).status).toBe(401);
    expect(
      (
        await t.api('POST', API_PATHS.deviceAuthRequests, {
          body: { userCode: started.userCode, approve: true },
        })
      ).status,
    ).toBe(401);
    const member = await t.addMember('bob@default.test');
    const decided = await t.api('POST', API_PATHS.deviceAuthRequests, {
      token: member,
      body: { userCode: started.userCode, approve: true },
    });
    expect(decided.status).toBe(200);
    const list = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
    expect(list.json).toEqual([expect.objectContaining({ user: 'bob@default.test' })]);
    // Members see their own devices only; the owner sees the account.
    await t.device().enroll(t.setupKey, { hostname: 'owners-box' });
    const forMember = await t.api('GET', API_PATHS.devices, { token: member });
    expect(forMember.json).toEqual([expect.objectContaining({ user: 'bob@default.test' })]);
    expect((await t.api('GET', API_PATHS.devices, { token: t.ownerToken })).json).toHaveLength(2);
  });

  it('rate limits: code pairs per address, wrong codes per user', async () => {
    const results: number[] = [];
    for (let i = 0; i < 11; i++) results.push((await start(t.device())).status);
    expect(results.slice(0, 10)).toEqual(Array(10).fill(200));
    const refused = await start(t.device());
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({
      code: 'rate_limited',
      message: expect.stringMatching(/try again in \d+ s/),
    });

    // A look-up refused (no session) names the route in the log, never the code in it.
    const unsigned = await t.api('GET', `${API_PATHS.deviceAuthRequests}/GHJK-LMNP`);
    expect(unsigned.status).toBe(401);
    expect(JSON.stringify(t.logs.lines)).not.toContain('GHJK-LMNP');
    const wrong: number[] = [];
    for (let i = 0; i < 10; i++)
      wrong.push(
        (await t.api('GET', `${API_PATHS.deviceAuthRequests}/BBBB-BBBB`, { token: t.ownerToken })).status,
      );
    expect(wrong).toEqual(Array(10).fill(404));
    // Now even a well-formed lookup is refused for a while: guessing stops here.
    const blocked = await t.api('GET', `${API_PATHS.deviceAuthRequests}/CCCC-CCCC`, { token: t.ownerToken });
    expect(blocked.status).toBe(429);
  });

  it('polls are limited per client too: a flood of made-up codes is refused', async () => {
    // This broker allows 20 a minute (the default is 600).
    const statuses = new Map<number, number>();
    for (let i = 0; i < 21; i++) {
      const { status } = await poll('made-up');
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 400: 20, 429: 1 });
  });

  it('bad input: a malformed code or device code is a 400 with a clear message', async () => {
    const short = await t.api('GET', `${API_PATHS.deviceAuthRequests}/ABC`, { token: t.ownerToken });
    expect(short.status).toBe(400);
    expect(short.text).toMatch(/XXXX-XXXX/);
    const bad = await poll('not-a-code');
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/malformed device code/);
    const noKey = await t.api('POST', API_PATHS.deviceAuth, { body: { protocolVersion: PROTOCOL_VERSION } });
    expect(noKey.status).toBe(400);
  });
});
