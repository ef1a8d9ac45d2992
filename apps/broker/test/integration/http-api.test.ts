import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import {
  API_PATHS,
  CAPABILITY_VERSION,
  ErrorBody,
  MAX_HTTP_BODY_BYTES,
  MIN_CAPABILITY_VERSION,
  SetupKeyInfo,
} from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import type { HttpResult } from '../support/http-client';

jest.setTimeout(60_000);

const UUID_NIL = '00000000-0000-4000-8000-000000000000';

describe.each(BACKENDS)('HTTP API on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const logs = new LogSink();
  let other: { token: string; setupKey: string; accountId: string };
  let memberToken: string;

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend, {}, logs);
    other = await t.addAccount('other');
    memberToken = await t.addMember('member@default.test');
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  /** Every failure: the expected 4xx, a valid ErrorBody, and a log line about it. */
  function expectError(res: HttpResult, status: number, message?: RegExp) {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = ErrorBody.parse(res.json);
    expect(body.statusCode).toBe(status);
    if (message) expect(body.message).toMatch(message);
    expect(logs.lines.some((l) => l.status === status && typeof l.msg === 'string')).toBe(true);
  }

  it('info, health and metrics answer', async () => {
    const info = await t.api('GET', API_PATHS.info);
    expect(info.json).toMatchObject({
      protocolVersion: CAPABILITY_VERSION,
      capabilityVersion: CAPABILITY_VERSION,
      minCapabilityVersion: MIN_CAPABILITY_VERSION,
      brokerPublicKey: t.broker.brokerPublicKey,
    });
    expect((await t.api('GET', API_PATHS.health)).json).toEqual({ ok: true });
    const metrics = await t.api('GET', API_PATHS.metrics);
    expect(metrics.status).toBe(200);
    for (const name of [
      'trellis_connected_devices',
      'trellis_control_messages_in_total',
      'trellis_control_messages_out_total',
      'trellis_enrollments_total',
      'trellis_errors_total',
    ]) {
      expect(metrics.text).toContain(name);
    }
  });

  it('unknown routes and methods are JSON 404s', async () => {
    expectError(await t.api('GET', '/nope'), 404);
    expectError(await t.api('GET', '/api/v1/nope'), 404);
    expectError(await t.api('POST', API_PATHS.info, { body: {} }), 404);
    expectError(await t.api('PUT', API_PATHS.devices, { body: {} }), 404);
  });

  describe('body handling (every POST route)', () => {
    const posts = [API_PATHS.login, API_PATHS.enroll, API_PATHS.setupKeys];
    it.each(posts)('%s: malformed JSON is 400', async (path) => {
      expectError(
        await t.api('POST', path, { raw: '{"email": ', token: t.ownerToken }),
        400,
        /not valid JSON/,
      );
    });
    it.each(posts)('%s: wrong content type is 415', async (path) => {
      const res = await t.api('POST', path, {
        raw: 'email=x',
        headers: { 'content-type': 'text/plain' },
        token: t.ownerToken,
      });
      expectError(res, 415);
    });
    it.each(posts)('%s: oversized body is 413', async (path) => {
      const raw = JSON.stringify({ pad: 'x'.repeat(MAX_HTTP_BODY_BYTES + 10) });
      expectError(await t.api('POST', path, { raw, token: t.ownerToken }), 413);
    });
    it.each(posts)('%s: missing body is 400', async (path) => {
      expectError(await t.api('POST', path, { token: t.ownerToken }), 400, /required/);
    });
    it.each(posts)('%s: unknown fields are 400', async (path) => {
      expectError(await t.api('POST', path, { body: { surprise: true }, token: t.ownerToken }), 400);
    });
    it('oversized chunked body without content-length is 413', async () => {
      const res = await new Promise<HttpResult>((resolve, reject) => {
        const req = request(
          new URL(API_PATHS.enroll, t.broker.url),
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            ca: readFileSync(t.broker.certFile),
          },
          (r) => {
            let text = '';
            r.on('data', (c) => {
              text += c;
            });
            r.on('end', () =>
              resolve({ status: r.statusCode!, headers: r.headers, text, json: JSON.parse(text) }),
            );
          },
        );
        req.on('error', reject);
        const chunk = 'x'.repeat(16 * 1024);
        for (let i = 0; i < (MAX_HTTP_BODY_BYTES / chunk.length) * 2; i++) req.write(chunk);
        req.end();
      });
      expectError(res, 413);
    });
  });

  describe('login', () => {
    it('wrong password and unknown user are both 401', async () => {
      expectError(
        await t.api('POST', API_PATHS.login, { body: { email: 'admin@trellis.local', password: 'nope' } }),
        401,
      );
      expectError(
        await t.api('POST', API_PATHS.login, { body: { email: 'ghost@x.test', password: 'nope' } }),
        401,
      );
    });
    it('an invalid email is 400', async () => {
      expectError(
        await t.api('POST', API_PATHS.login, { body: { email: 'not-an-email', password: 'x' } }),
        400,
        /email/,
      );
    });
  });

  describe('authentication on user routes', () => {
    const routes: Array<[string, string]> = [
      ['GET', API_PATHS.setupKeys],
      ['POST', API_PATHS.setupKeys],
      ['DELETE', `${API_PATHS.setupKeys}/${UUID_NIL}`],
      ['GET', API_PATHS.devices],
      ['DELETE', `${API_PATHS.devices}/${UUID_NIL}`],
    ];
    it.each(routes)('%s %s without a token is 401', async (method, path) => {
      expectError(
        await t.api(method, path, method === 'POST' ? { body: { name: 'k' } } : {}),
        401,
        /missing/,
      );
    });
    it.each(routes)('%s %s with an unknown token is 401', async (method, path) => {
      const opts = { token: 'tsess_doesnotexist', ...(method === 'POST' ? { body: { name: 'k' } } : {}) };
      expectError(await t.api(method, path, opts), 401, /invalid or expired/);
    });
    it.each(routes)('%s %s with a malformed Authorization header is 401', async (method, path) => {
      const opts = {
        headers: { authorization: 'Basic abc' },
        ...(method === 'POST' ? { body: { name: 'k' } } : {}),
      };
      expectError(await t.api(method, path, opts), 401, /malformed/);
    });
  });

  describe('setup keys', () => {
    it('owner creates, lists and revokes; the key itself is never listed', async () => {
      const created = await t.api('POST', API_PATHS.setupKeys, {
        token: t.ownerToken,
        body: { name: 'ci', reusable: true, expiresInSeconds: 3600, usageLimit: 5 },
      });
      expect(created.status).toBe(201);
      expect(created.json.key).toMatch(/^tskey_/);
      const list = await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken });
      const info = SetupKeyInfo.array()
        .parse(list.json)
        .find((k) => k.id === created.json.setupKey.id)!;
      expect(info).toMatchObject({ name: 'ci', reusable: true, usageLimit: 5, usedCount: 0, valid: true });
      expect(list.text).not.toContain(created.json.key);
      const revoked = await t.api('DELETE', `${API_PATHS.setupKeys}/${info.id}`, { token: t.ownerToken });
      expect(revoked.json).toMatchObject({ id: info.id, valid: false });
      expect(revoked.json.revokedAt).not.toBeNull();
    });
    it('invalid create bodies are 400', async () => {
      for (const body of [
        { name: '' },
        { name: 'x', expiresInSeconds: -1 },
        { name: 'x', usageLimit: 0 },
        { name: 'x', reusable: 'yes' },
        [],
        'text',
      ]) {
        expectError(await t.api('POST', API_PATHS.setupKeys, { token: t.ownerToken, body }), 400);
      }
    });
    it('a member may list but not create or revoke', async () => {
      expect((await t.api('GET', API_PATHS.setupKeys, { token: memberToken })).status).toBe(200);
      expectError(await t.api('POST', API_PATHS.setupKeys, { token: memberToken, body: { name: 'm' } }), 403);
      expectError(await t.api('DELETE', `${API_PATHS.setupKeys}/${UUID_NIL}`, { token: memberToken }), 403);
    });
    it('bad and unknown ids', async () => {
      expectError(
        await t.api('DELETE', `${API_PATHS.setupKeys}/not-a-uuid`, { token: t.ownerToken }),
        400,
        /UUID/,
      );
      expectError(await t.api('DELETE', `${API_PATHS.setupKeys}/%zz`, { token: t.ownerToken }), 400);
      expectError(await t.api('DELETE', `${API_PATHS.setupKeys}/${UUID_NIL}`, { token: t.ownerToken }), 404);
    });
    it("another account's keys are invisible and cannot be revoked", async () => {
      const theirs = await t.api('GET', API_PATHS.setupKeys, { token: other.token });
      const theirId = theirs.json[0].id as string;
      const mine = await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken });
      expect(mine.json.map((k: { id: string }) => k.id)).not.toContain(theirId);
      expectError(await t.api('DELETE', `${API_PATHS.setupKeys}/${theirId}`, { token: t.ownerToken }), 404);
      const after = await t.api('GET', API_PATHS.setupKeys, { token: other.token });
      expect(after.json[0].revokedAt).toBeNull();
    });
  });

  describe('devices', () => {
    it("another account's devices are invisible and cannot be removed; members cannot remove", async () => {
      const d = t.device();
      await d.enroll(other.setupKey, { hostname: 'their-box' });
      const mine = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
      expect(mine.json.map((x: { id: string }) => x.id)).not.toContain(d.id);
      expectError(await t.api('DELETE', `${API_PATHS.devices}/${d.id}`, { token: t.ownerToken }), 404);
      const theirs = await t.api('GET', API_PATHS.devices, { token: other.token });
      expect(theirs.json.map((x: { id: string }) => x.id)).toContain(d.id);

      const own = t.device();
      await own.enroll(t.setupKey, { hostname: 'own-box' });
      expectError(await t.api('DELETE', `${API_PATHS.devices}/${own.id}`, { token: memberToken }), 403);
      expectError(await t.api('DELETE', `${API_PATHS.devices}/nope`, { token: t.ownerToken }), 400, /UUID/);
      expect((await t.api('DELETE', `${API_PATHS.devices}/${own.id}`, { token: t.ownerToken })).status).toBe(
        200,
      );
      expectError(await t.api('DELETE', `${API_PATHS.devices}/${own.id}`, { token: t.ownerToken }), 404);
    });
  });

  describe('enroll', () => {
    const keyOf = () => t.device().keys.publicKey;
    const enroll = (body: Record<string, unknown>) =>
      t.api('POST', API_PATHS.enroll, {
        body: {
          protocolVersion: 1,
          setupKey: t.setupKey,
          publicKey: keyOf(),
          hostname: 'h',
          os: 'linux',
          ...body,
        },
      });
    it('rejects unknown setup keys (401) and malformed fields (400)', async () => {
      expectError(await enroll({ setupKey: 'tskey_unknown-key-0000' }), 401, /unknown setup key/);
      expectError(await enroll({ publicKey: 'not-a-key' }), 400, /publicKey/);
      expectError(await enroll({ hostname: '' }), 400, /hostname/);
      expectError(await enroll({ endpoints: ['999.1.1.1:5'] }), 400, /endpoints/);
      expectError(await enroll({ endpoints: Array(17).fill('192.0.2.1:1') }), 400, /endpoints/);
      expectError(await enroll({ setupKey: 'short' }), 400, /setupKey/);
      expectError(
        await enroll({ protocolVersion: 0 }),
        400,
        /protocol version 0 is too old.*speaks capability version 3 and serves 1 and newer/,
      );
    });
    it('serves agents of older and newer capability versions alike', async () => {
      for (const protocolVersion of [1, 2, 7]) expect((await enroll({ protocolVersion })).status).toBe(201);
    });
    it('one-off, revoked, expired and used-up keys are refused', async () => {
      const account = await t.broker.services.accounts.byName('default');
      const keys = t.broker.services.setupKeys;
      const oneOff = await keys.create(account.id, { name: 'once', reusable: false });
      expect((await enroll({ setupKey: oneOff.key })).status).toBe(201);
      expectError(await enroll({ setupKey: oneOff.key }), 401, /usage limit/);
      const limited = await keys.create(account.id, { name: 'two', reusable: true, usageLimit: 2 });
      expect((await enroll({ setupKey: limited.key })).status).toBe(201);
      expect((await enroll({ setupKey: limited.key })).status).toBe(201);
      expectError(await enroll({ setupKey: limited.key }), 401, /usage limit/);
      const revoked = await keys.create(account.id, { name: 'rev', reusable: true });
      await keys.revoke(account.id, revoked.setupKey.id);
      expectError(await enroll({ setupKey: revoked.key }), 401, /revoked/);
      const expiring = await keys.create(account.id, { name: 'exp', reusable: true, expiresInSeconds: 1 });
      await new Promise((r) => setTimeout(r, 1100));
      expectError(await enroll({ setupKey: expiring.key }), 401, /expired/);
    });
  });
});
