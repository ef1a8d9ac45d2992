import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { AccountUserInfo, API_PATHS, AuditPage, ErrorBody, RemovedUser } from '@trellis/proto';
import { createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { HttpResult } from '../support/http-client';

jest.setTimeout(90_000);

const PASSWORD = 'initial-pass-123';

function expectError(res: HttpResult, status: number, message?: RegExp) {
  expect(res.status).toBe(status);
  const body = ErrorBody.parse(res.json);
  if (message) expect(body.message).toMatch(message);
}

/** The users API: who may manage whom, and what removing a user takes with them. */
describe('users API', () => {
  let t: TestBroker;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend);
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  const users = (token: string) => t.api('GET', API_PATHS.users, { token });
  const add = (token: string, body: unknown) => t.api('POST', API_PATHS.users, { token, body });
  const setRole = (token: string, id: string, role: string) =>
    t.api('PUT', `${API_PATHS.users}/${id}/role`, { token, body: { role } });
  const remove = (token: string, id: string) => t.api('DELETE', `${API_PATHS.users}/${id}`, { token });
  const login = async (email: string, password = PASSWORD) => {
    const res = await t.api('POST', API_PATHS.login, { body: { email, password } });
    return res.status === 200 ? (res.json.token as string) : null;
  };
  /** Adds a user as the bootstrap owner; returns its id and a signed-in token. */
  const addUser = async (email: string, role: string) => {
    const res = await add(t.ownerToken, { email, role, password: PASSWORD });
    expect(res.status).toBe(201);
    const info = AccountUserInfo.parse(res.json);
    return { id: info.id, token: (await login(email))! };
  };
  const idOf = async (email: string) => {
    const list = AccountUserInfo.array().parse((await users(t.ownerToken)).json);
    return list.find((u) => u.email === email)?.id;
  };

  it('lists the account users with role, creation, last sign-in and devices; only for owners and admins', async () => {
    const res = await users(t.ownerToken);
    expect(res.status).toBe(200);
    const [owner] = AccountUserInfo.array().parse(res.json);
    expect(owner).toMatchObject({ email: t.broker.bootstrap!.ownerEmail, role: 'owner', devices: 0 });
    expect(Date.parse(owner!.lastSignInAt!)).toBeGreaterThan(Date.now() - 60_000);

    const member = await t.addMember('lister@default.test');
    expectError(await users(member), 403, /owner or admin/);
    expectError(await t.api('GET', API_PATHS.users), 401);
  });

  it('adds a user with a normalised email and an initial password of 12+ characters, who can then sign in', async () => {
    const res = await add(t.ownerToken, {
      email: '  New.User@Default.TEST ',
      role: 'member',
      password: PASSWORD,
    });
    // Spaces are refused by the schema; case is normalised.
    expect(res.status).toBe(400);
    const ok = await add(t.ownerToken, {
      email: 'New.User@Default.TEST',
      role: 'member',
      password: PASSWORD,
    });
    expect(ok.status).toBe(201);
    const info = AccountUserInfo.parse(ok.json);
    expect(info).toMatchObject({
      email: 'new.user@default.test',
      role: 'member',
      devices: 0,
      lastSignInAt: null,
    });
    expect(await login('new.user@default.test')).not.toBeNull();
    expect(ok.text).not.toContain(PASSWORD);

    expectError(
      await add(t.ownerToken, { email: 'NEW.user@default.test', role: 'admin', password: PASSWORD }),
      409,
      /already in use/,
    );
    expectError(
      await add(t.ownerToken, { email: 'short@default.test', role: 'member', password: 'elevenchars' }),
      400,
    );
    expectError(await add(t.ownerToken, { email: 'not an email', role: 'member', password: PASSWORD }), 400);
    expectError(await add(t.ownerToken, { email: 'r@default.test', role: 'root', password: PASSWORD }), 400);
    expectError(
      await add(t.ownerToken, { email: 'x@default.test', role: 'member', password: PASSWORD, extra: 1 }),
      400,
    );
    expectError(await add(t.ownerToken, undefined), 400);
  });

  it('only an owner grants owner or admin; an admin adds members only', async () => {
    const admin = await addUser('admin1@default.test', 'admin');
    expectError(await add(admin.token, { email: 'a2@default.test', role: 'admin', password: PASSWORD }), 403);
    expectError(await add(admin.token, { email: 'o2@default.test', role: 'owner', password: PASSWORD }), 403);
    const member = await add(admin.token, { email: 'm2@default.test', role: 'member', password: PASSWORD });
    expect(member.status).toBe(201);
    const memberId = AccountUserInfo.parse(member.json).id;
    expectError(await setRole(admin.token, memberId, 'admin'), 403, /only an owner/);
    const ownerId = (await idOf(t.broker.bootstrap!.ownerEmail))!;
    expectError(await setRole(admin.token, ownerId, 'member'), 403, /only an owner/);
    expectError(await remove(admin.token, ownerId), 403, /only an owner/);
    const otherAdmin = await addUser('admin2@default.test', 'admin');
    expectError(await setRole(admin.token, otherAdmin.id, 'member'), 403);
    expectError(await remove(admin.token, otherAdmin.id), 403);
  });

  it("a changed role takes effect on the user's next request, with the session they hold", async () => {
    const u = await addUser('promoted@default.test', 'member');
    expectError(await users(u.token), 403);
    const up = await setRole(t.ownerToken, u.id, 'admin');
    expect(AccountUserInfo.parse(up.json).role).toBe('admin');
    expect((await users(u.token)).status).toBe(200);
    expect((await setRole(t.ownerToken, u.id, 'member')).status).toBe(200);
    expectError(await users(u.token), 403);
    expectError(await setRole(t.ownerToken, u.id, 'superuser'), 400);
    expectError(await setRole(t.ownerToken, 'not-a-uuid', 'admin'), 400, /UUID/);
  });

  it('nobody changes their own role or removes themselves; the last owner stays', async () => {
    const ownerId = (await idOf(t.broker.bootstrap!.ownerEmail))!;
    expectError(await setRole(t.ownerToken, ownerId, 'admin'), 403, /your own role/);
    expectError(await remove(t.ownerToken, ownerId), 403, /yourself/);
    const admin = await addUser('self@default.test', 'admin');
    expectError(await remove(admin.token, admin.id), 403, /yourself/);

    // Two owners demoting each other at once: one wins, and the account keeps an owner.
    const second = await addUser('owner2@default.test', 'owner');
    const [a, b] = await Promise.all([
      setRole(t.ownerToken, second.id, 'member'),
      setRole(second.token, ownerId, 'member'),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 403]);
    const owners = AccountUserInfo.array()
      .parse((await users(a.status === 200 ? t.ownerToken : second.token)).json)
      .filter((u) => u.role === 'owner');
    expect(owners).toHaveLength(1);
    if (b.status === 200) {
      // The bootstrap owner lost: give it back for the tests that follow.
      expect((await setRole(second.token, ownerId, 'owner')).status).toBe(200);
    }
    await remove(t.ownerToken, second.id);
  });

  it('removing a user ends their sessions, revokes their setup keys and removes their devices at once', async () => {
    const gone = await addUser('leaver@default.test', 'admin');
    const second = (await login('leaver@default.test'))!;
    const key = await t.api('POST', API_PATHS.setupKeys, {
      token: gone.token,
      body: { name: 'theirs', reusable: true },
    });
    expect(key.status).toBe(201);
    const d1 = t.device();
    const d2 = t.device();
    await d1.enroll(key.json.key, { name: 'leaver-laptop' });
    await d2.enroll(key.json.key, { name: 'leaver-phone' });
    const before = AccountUserInfo.array().parse((await users(t.ownerToken)).json);
    expect(before.find((u) => u.email === 'leaver@default.test')?.devices).toBe(2);

    const res = await remove(t.ownerToken, gone.id);
    expect(res.status).toBe(200);
    expect(RemovedUser.parse(res.json)).toMatchObject({
      user: { email: 'leaver@default.test', role: 'admin' },
      sessionsEnded: 2,
      devicesRemoved: 2,
      setupKeysRevoked: 1,
    });
    expectError(await users(gone.token), 401);
    expectError(await users(second), 401);
    expect(await login('leaver@default.test')).toBeNull();
    const devices = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
    expect(devices.json.map((d: { name: string }) => d.name)).not.toContain('leaver-laptop');
    const keys = await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken });
    expect(keys.json.find((k: { name: string }) => k.name === 'theirs')).toMatchObject({ valid: false });
    expect((await t.device().postEnroll(key.json.key)).status).not.toBe(201);
    expectError(await remove(t.ownerToken, gone.id), 404);
  });

  it('role changes and removals are in the audit log: who, from where, what, and the devices removed with the user', async () => {
    const member = await addUser('audited@default.test', 'member');
    expect((await setRole(t.ownerToken, member.id, 'admin')).status).toBe(200);
    // The same role again changes nothing and records nothing.
    expect((await setRole(t.ownerToken, member.id, 'admin')).status).toBe(200);
    const key = await t.api('POST', API_PATHS.setupKeys, {
      token: member.token,
      body: { name: 'by-audited' },
    });
    await t.device().enroll(key.json.key, { name: 'audited-box' });
    expect((await remove(t.ownerToken, member.id)).status).toBe(200);
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=user.&q=audited@default.test`, { token: t.ownerToken }))
        .json,
    );
    const owner = t.broker.bootstrap!.ownerEmail;
    const mine = log.events.filter((e) => e.target.name === 'audited@default.test');
    expect(mine.map((e) => e.action)).toEqual([
      'user.removed',
      'user.role-changed',
      'user.signed-in',
      'user.created',
    ]);
    expect(mine[3]).toMatchObject({ actor: { kind: 'user', email: owner, address: '127.0.0.1' } });
    expect(mine[1]).toMatchObject({
      actor: { kind: 'user', email: owner, address: '127.0.0.1' },
      details: { from: 'member', to: 'admin' },
    });
    expect(mine[0]).toMatchObject({
      actor: { kind: 'user', email: owner, address: '127.0.0.1' },
      details: { role: 'admin', sessionsEnded: 1, setupKeysRevoked: 1 },
    });
    const devices = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=device.removed&q=audited-box`, { token: t.ownerToken }))
        .json,
    );
    expect(devices.events).toHaveLength(1);
    expect(devices.events[0]!.actor).toMatchObject({ kind: 'user', email: owner });
  });

  it('an admin removes a member; the owner removes an admin', async () => {
    const admin = await addUser('remover@default.test', 'admin');
    const member = await addUser('removed@default.test', 'member');
    expect((await remove(admin.token, member.id)).status).toBe(200);
    expect((await remove(t.ownerToken, admin.id)).status).toBe(200);
    expect(await idOf('remover@default.test')).toBeUndefined();
  });

  it('nothing of another account is visible or changeable', async () => {
    const other = await t.addAccount('elsewhere');
    const theirs = AccountUserInfo.array().parse((await users(other.token)).json);
    expect(theirs.map((u) => u.email)).toEqual(['owner@elsewhere.test']);
    const victim = await addUser('victim@default.test', 'member');
    expectError(await setRole(other.token, victim.id, 'owner'), 404);
    expectError(await remove(other.token, victim.id), 404);
    // An email in use elsewhere is refused without saying where.
    const taken = await add(other.token, {
      email: 'victim@default.test',
      role: 'member',
      password: PASSWORD,
    });
    expect(taken.status).toBe(409);
    expect(ErrorBody.parse(taken.json).message).toBe('the email victim@default.test is already in use');
    const ours = AccountUserInfo.array().parse((await users(t.ownerToken)).json);
    expect(ours.map((u) => u.email)).not.toContain('owner@elsewhere.test');
    expect((await users(victim.token)).status).toBe(403);
    const again = AccountUserInfo.array().parse((await users(t.ownerToken)).json);
    expect(again.find((u) => u.id === victim.id)?.role).toBe('member');
  });
});

/** An open event stream (the dashboard's live view) follows the same rules as any request. */
describe('users API: open event streams', () => {
  let t: TestBroker;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend, { eventsHeartbeatMs: 200 });
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  /** Opens the stream with a bearer token; resolves when the broker ends it. */
  const streamEnds = (token: string) =>
    new Promise<{ ended: Promise<void>; close: () => void }>((resolve, reject) => {
      const req = request(
        new URL(API_PATHS.events, t.broker.url),
        { headers: { authorization: `Bearer ${token}` }, ca: readFileSync(t.broker.certFile), agent: false },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.resume();
          resolve({ ended: new Promise((r) => res.on('close', () => r())), close: () => req.destroy() });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const addUser = async (email: string, role: string) => {
    const res = await t.api('POST', API_PATHS.users, {
      token: t.ownerToken,
      body: { email, role, password: PASSWORD },
    });
    const login = await t.api('POST', API_PATHS.login, { body: { email, password: PASSWORD } });
    return { id: AccountUserInfo.parse(res.json).id, token: login.json.token as string };
  };

  it("a demoted admin's stream ends (it reconnects with the member's view); a removed user's too", async () => {
    const admin = await addUser('watcher@default.test', 'admin');
    const stream = await streamEnds(admin.token);
    const unchanged = await streamEnds(t.ownerToken);
    await new Promise((r) => setTimeout(r, 500));
    await t.api('PUT', `${API_PATHS.users}/${admin.id}/role`, {
      token: t.ownerToken,
      body: { role: 'member' },
    });
    await stream.ended;

    const again = await streamEnds(admin.token);
    await t.api('DELETE', `${API_PATHS.users}/${admin.id}`, { token: t.ownerToken });
    await again.ended;
    // The owner's stream, untouched, is still open.
    const open = await Promise.race([
      unchanged.ended.then(() => false),
      new Promise((r) => setTimeout(() => r(true), 500)),
    ]);
    expect(open).toBe(true);
    unchanged.close();
  });
});
