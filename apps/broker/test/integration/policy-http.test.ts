import { DEFAULT_POLICY_TEXT } from '@trellis/policy';
import {
  API_PATHS,
  DeviceInfo,
  ErrorBody,
  ipv4InCidr,
  MAX_HTTP_BODY_BYTES,
  MAX_POLICY_BYTES,
  PolicyApplyResult,
  PolicyCheckResult,
  PolicyDocument,
  PolicyExplainResult,
  PolicyPlanResult,
  PolicyRejection,
  PolicyVersionInfo,
} from '@trellis/proto';
import { POLICY_BODY_BYTES } from '../../src/http/json-body';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import type { HttpResult } from '../support/http-client';

jest.setTimeout(120_000);

const POLICY = API_PATHS.policy;

/** ops@ (an admin) owns tag:db through group:ops; tag:web has no owners besides the account owner. */
const TEXT = `{
  // who may tag what
  "groups": { "group:ops": ["user:ops@default.test"] },
  "tagOwners": { "tag:db": ["group:ops"], "tag:web": [] },
  "cidrs": { "lab": "100.96.0.0/16" },
  "rules": [
    { "src": ["*"], "dst": ["tag:db"], "ports": ["tcp:5432"] }, // postgres
    { "src": ["*"], "dst": ["*"], "ports": ["icmp"] }
  ]
}
`;

const BAD = `{
  "rules": [
    { "src": ["*"], "dst": ["*"], "ports": ["tcp:0"] },
    { "src": ["*"], "dst": ["*"], "ports": ["sctp:9"] }
  ]
}
`;

describe.each(BACKENDS)('policy HTTP API on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  let memberToken: string;
  let opsToken: string;
  let adminToken: string;

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend, {}, logs);
    memberToken = await t.addMember('member@default.test');
    const account = await t.broker.services.accounts.byName('default');
    const login = async (email: string, role: string) => {
      await t.broker.services.users.create(account.id, email, role, 'pw-admin-1234');
      const res = await t.api('POST', API_PATHS.login, { body: { email, password: 'pw-admin-1234' } });
      return res.json.token as string;
    };
    opsToken = await login('ops@default.test', 'admin');
    adminToken = await login('other-admin@default.test', 'admin');
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  function expectError(res: HttpResult, status: number, message?: RegExp) {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = ErrorBody.parse(res.json);
    expect(body.statusCode).toBe(status);
    if (message) expect(body.message).toMatch(message);
  }

  const get = (path: string, token = t.ownerToken) => t.api('GET', path, { token });
  const send = (method: string, path: string, body: unknown, token = t.ownerToken) =>
    t.api(method, path, { token, body });

  it('every route needs a signed-in user', async () => {
    for (const [method, path] of [
      ['GET', POLICY],
      ['GET', `${POLICY}/history`],
      ['GET', `${POLICY}/versions/1`],
      ['POST', `${POLICY}/check`],
      ['POST', `${POLICY}/plan`],
      ['PUT', POLICY],
      ['POST', `${POLICY}/rollback`],
      ['POST', `${POLICY}/explain`],
      ['PUT', `${API_PATHS.devices}/x/tags`],
    ] as const) {
      expectError(await t.api(method, path, method === 'GET' ? {} : { body: {} }), 401);
    }
  });

  it('get, check, 422 with located errors, apply, history, versions and rollback', async () => {
    const first = PolicyDocument.parse((await get(POLICY, memberToken)).json);
    expect(first).toMatchObject({ version: 0, text: DEFAULT_POLICY_TEXT, rollbackOf: null });
    expect((await get(`${POLICY}/history`, memberToken)).json).toEqual([]);

    const checked = await send('POST', `${POLICY}/check`, { text: BAD });
    expect(checked.status).toBe(200);
    const check = PolicyCheckResult.parse(checked.json);
    expect(check.ok).toBe(false);
    expect(check.errors.map((e) => e.line)).toEqual([3, 4]);

    // An invalid policy: 422, the ErrorBody with every located error.
    const rejected = await send('PUT', POLICY, { text: BAD });
    expectError(rejected, 422, /the policy is invalid/);
    const rejection = PolicyRejection.parse(rejected.json);
    expect(rejection.errors).toEqual(check.errors);
    expect(rejection.errors[0]).toMatchObject({
      line: 3,
      column: expect.any(Number),
      path: expect.any(Array),
    });
    expect(logs.lines.some((l) => l.status === 422 && l.kind === 'invalid_policy')).toBe(true);
    const badPlan = PolicyPlanResult.parse((await send('POST', `${POLICY}/plan`, { text: BAD })).json);
    expect(badPlan).toMatchObject({ ok: false, devices: [], fromVersion: 0 });

    // Members read and explain but change nothing, nor check or plan.
    expectError(await send('PUT', POLICY, { text: TEXT }, memberToken), 403);
    expectError(await send('POST', `${POLICY}/check`, { text: TEXT }, memberToken), 403);
    expectError(await send('POST', `${POLICY}/plan`, { text: TEXT }, memberToken), 403);
    expectError(await send('POST', `${POLICY}/rollback`, { version: 1 }, memberToken), 403);

    const applied = await send('PUT', POLICY, { text: TEXT });
    expect(applied.status).toBe(200);
    expect(PolicyApplyResult.parse(applied.json)).toMatchObject({ version: 1 });
    expect(PolicyDocument.parse((await get(POLICY, memberToken)).json)).toMatchObject({
      version: 1,
      text: TEXT,
      appliedBy: t.broker.bootstrap!.ownerEmail,
    });
    const byAdmin = await send('PUT', POLICY, { text: TEXT.replace('tcp:5432', 'tcp:5433') }, adminToken);
    expect(PolicyApplyResult.parse(byAdmin.json).version).toBe(2);
    const history = PolicyVersionInfo.array().parse((await get(`${POLICY}/history`, memberToken)).json);
    expect(history.map((v) => [v.version, v.appliedBy])).toEqual([
      [2, 'other-admin@default.test'],
      [1, t.broker.bootstrap!.ownerEmail],
    ]);
    expect((await get(`${POLICY}/versions/1`, memberToken)).json).toMatchObject({ version: 1, text: TEXT });
    expectError(await get(`${POLICY}/versions/9`), 404, /no policy version 9/);
    expectError(await get(`${POLICY}/versions/one`), 400);
    expectError(await get(`${POLICY}/versions/-1`), 400);

    const rolled = await send('POST', `${POLICY}/rollback`, { version: 1 }, opsToken);
    expect(rolled.status).toBe(200);
    expect(PolicyApplyResult.parse(rolled.json).version).toBe(3);
    expect((await get(POLICY)).json).toMatchObject({
      version: 3,
      text: TEXT,
      rollbackOf: 1,
      appliedBy: 'ops@default.test',
    });
    expectError(await send('POST', `${POLICY}/rollback`, { version: 0 }), 400);
    expectError(await send('POST', `${POLICY}/rollback`, { version: 42 }), 404);

    for (const body of [{}, { text: '' }, { text: 7 }, { text: TEXT, extra: 1 }, [], 'text']) {
      expectError(await send('PUT', POLICY, body), 400);
    }
    expect((await get(POLICY)).json.version).toBe(3);
  });

  it('applies racing each other all land, one version each, nothing lost', async () => {
    const account = await t.broker.services.accounts.byName('default');
    const policy = t.broker.services.policy;
    const before = (await policy.get(account.id)).version;
    // Each is checked before the account row is locked, then takes the next version under it.
    const texts = [0, 1, 2, 3].map((i) => TEXT.replace('// postgres', `// race ${i}`));
    const results = await Promise.all(
      texts.map((text) => policy.apply(account.id, text, 'race@default.test')),
    );
    expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4].map((n) => before + n));
    const history = await policy.history(account.id);
    const landed = await Promise.all(history.slice(0, 4).map((v) => policy.version(account.id, v.version)));
    expect(landed.map((d) => d.text).sort()).toEqual([...texts].sort());
  });

  it('takes policy bodies up to MAX_POLICY_BYTES of text; other routes keep the general limit', async () => {
    // Comment lines full of quotes: escaped, the body is well over the general limit.
    const padding = `// ${'"'.repeat(200)}\n`.repeat(Math.floor((MAX_POLICY_BYTES - TEXT.length) / 204));
    const big = `${padding}${TEXT}`;
    expect(Buffer.byteLength(big)).toBeLessThanOrEqual(MAX_POLICY_BYTES);
    expect(JSON.stringify({ text: big }).length).toBeGreaterThan(MAX_POLICY_BYTES * 1.9);
    const checked = await send('POST', `${POLICY}/check`, { text: big });
    expect(checked.status).toBe(200);
    expect(checked.json.ok).toBe(true);
    expect((await send('POST', `${POLICY}/plan`, { text: big })).status).toBe(200);
    const applied = await send('PUT', `${POLICY}/`, { text: big });
    expect(applied.status).toBe(200);
    expect((await get(POLICY)).json.text).toBe(big);

    const tooMuchText = `${TEXT}${' '.repeat(MAX_POLICY_BYTES)}`;
    expectError(await send('POST', `${POLICY}/check`, { text: tooMuchText }), 400, /at most 1048576 bytes/);
    expectError(
      await send('POST', `${POLICY}/check`, { text: `${'\\'.repeat(POLICY_BODY_BYTES / 2)}` }),
      413,
    );
    // Without credentials the general limit holds there too.
    expectError(await t.api('PUT', POLICY, { body: { text: big } }), 413);
    expectError(await t.api('PUT', POLICY, { body: { text: TEXT } }), 401);
    const overGeneral = { name: 'x'.repeat(MAX_HTTP_BODY_BYTES) };
    expectError(await send('POST', API_PATHS.setupKeys, overGeneral), 413);
    expectError(
      await send('POST', `${POLICY}/explain`, { src: 'x'.repeat(MAX_HTTP_BODY_BYTES), dst: 'y' }),
      413,
    );
    expect((await send('PUT', POLICY, { text: TEXT })).status).toBe(200);
  });

  it('tags: admins only, declared tags only, owners only; setup keys carry tags, a block and the creator', async () => {
    const db = t.device();
    const web = t.device();
    await db.enroll(t.setupKey, { hostname: 'db-1' });
    await web.enroll(t.setupKey, { hostname: 'web-1' });
    expect((await send('PUT', POLICY, { text: TEXT })).status).toBe(200);
    const tags = (device: string, list: unknown, token?: string) =>
      send('PUT', `${API_PATHS.devices}/${device}/tags`, { tags: list }, token);

    expectError(await tags('db-1', ['tag:db'], memberToken), 403);
    expectError(await tags('db-1', ['tag:db'], adminToken), 403, /not among the owners of tag:db/);
    expectError(await tags('db-1', ['tag:nope'], opsToken), 400, /tag:nope: not declared/);
    expectError(await tags('db-1', ['db'], opsToken), 400);
    expectError(await tags('Not_A_Name', ['tag:db'], opsToken), 400);
    expectError(await tags('ghost', ['tag:db'], opsToken), 404);
    const byOps = await tags('db-1', ['tag:db'], opsToken);
    expect(byOps.status).toBe(200);
    expect(DeviceInfo.parse(byOps.json)).toMatchObject({ name: 'db-1', tags: ['tag:db'] });
    // The owner may apply any declared tag; by id too.
    expect((await tags(web.id, ['tag:web', 'tag:db'])).json.tags).toEqual(['tag:db', 'tag:web']);
    // ops keeps tag:web it does not own, and may take off tag:db.
    expect((await tags('web-1', ['tag:web'], opsToken)).json.tags).toEqual(['tag:web']);
    expectError(await tags('web-1', ['tag:web', 'tag:db'], adminToken), 403);

    const devices = DeviceInfo.array().parse((await get(API_PATHS.devices, adminToken)).json);
    expect(devices.find((d) => d.name === 'db-1')?.tags).toEqual(['tag:db']);
    // A member sees only devices of their own: these are the owner's and tagged.
    expect((await get(API_PATHS.devices, memberToken)).json).toEqual([]);

    const explained = await send(
      'POST',
      `${POLICY}/explain`,
      { src: 'web-1', dst: 'db-1:5432' },
      memberToken,
    );
    expect(explained.status).toBe(200);
    expect(PolicyExplainResult.parse(explained.json)).toMatchObject({
      allowed: true,
      reasons: [{ kind: 'rule', index: 0, line: 7 }],
    });
    const denied = await send('POST', `${POLICY}/explain`, { src: 'db-1', dst: 'web-1:22' }, memberToken);
    expect(denied.json).toMatchObject({ allowed: false, reasons: [], out: [{ proto: 'icmp' }] });
    expectError(await send('POST', `${POLICY}/explain`, { src: 'db-1', dst: 'ghost' }), 404);
    expectError(await send('POST', `${POLICY}/explain`, { src: 'db-1', dst: 'web-1:ftp' }), 400);
    expectError(await send('POST', `${POLICY}/explain`, { src: 'db-1' }), 400);

    // Setup keys: the creator must own the tags; the devices get them, its block and its creator.
    const key = (body: unknown, token: string) => send('POST', API_PATHS.setupKeys, body, token);
    expectError(await key({ name: 'k', tags: ['tag:db'] }, adminToken), 403);
    expectError(await key({ name: 'k', tags: ['tag:nope'] }, opsToken), 400);
    expectError(await key({ name: 'k', tags: ['nope'] }, opsToken), 400);
    expectError(await key({ name: 'k', cidr: 'nowhere' }, opsToken), 409, /no block "nowhere"/);
    const created = await key({ name: 'lab-db', tags: ['tag:db'], cidr: 'lab', reusable: true }, opsToken);
    expect(created.status).toBe(201);
    expect(created.json.setupKey).toMatchObject({ tags: ['tag:db'], cidr: 'lab' });
    const labDevice = t.device();
    const enrolled = await labDevice.enroll(created.json.key, { hostname: 'lab-db' });
    expect(ipv4InCidr(enrolled.address, '100.96.0.0/16')).toBe(true);
    const after = DeviceInfo.array().parse((await get(API_PATHS.devices)).json);
    expect(after.find((d) => d.name === 'lab-db')).toMatchObject({ tags: ['tag:db'] });
    // A key without tags: its devices are its creator's.
    const plain = await key({ name: 'ops-own' }, opsToken);
    expect(plain.status).toBe(201);
    await t.device().enroll(plain.json.key, { hostname: 'ops-laptop' });
    const mine = DeviceInfo.array().parse((await get(API_PATHS.devices)).json);
    expect(mine.find((d) => d.name === 'ops-laptop')).toMatchObject({ tags: [], user: 'ops@default.test' });
    expect(after.find((d) => d.name === 'db-1')?.user).toBeNull();
    expect(ipv4InCidr(after.find((d) => d.name === 'db-1')!.address, '100.96.0.0/16')).toBe(false);
  });

  it('rename: admins only, a DNS label, unique in the account; by name or id', async () => {
    const a = t.device();
    const b = t.device();
    const ea = await a.enroll(t.setupKey, { name: 'old-name' });
    await b.enroll(t.setupKey, { name: 'other' });
    const rename = (device: string, name: unknown, token?: string) =>
      send('PUT', `${API_PATHS.devices}/${device}/name`, { name }, token);
    expectError(await rename('old-name', 'new-name', memberToken), 403);
    expectError(await rename('old-name', 'Bad_Name'), 400);
    expectError(await rename('old-name', 'other'), 409, /already in account default/);
    expectError(await rename('ghost', 'new-name'), 404);
    const renamed = await rename('old-name', 'new-name');
    expect(renamed.status).toBe(200);
    expect(DeviceInfo.parse(renamed.json)).toMatchObject({ id: ea.deviceId, name: 'new-name' });
    expect((await rename(ea.deviceId, 'again')).json).toMatchObject({ name: 'again' });
    expectError(await t.api('PUT', `${API_PATHS.devices}/again/name`, { body: { name: 'x' } }), 401);
  });
});
