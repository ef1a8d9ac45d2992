import {
  API_PATHS,
  CreateRelayTokenResponse,
  ErrorBody,
  RelayCloseCode,
  RelayTokenInfo,
} from '@trellis/proto';
import { eq } from 'drizzle-orm';
import { relayTokens } from '../../src/db/schema';
import { BACKENDS, type Backend, createBackend, tempDir } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { HttpResult } from '../support/http-client';
import { TestRelay } from '../support/test-relay';

jest.setTimeout(90_000);

function expectError(res: HttpResult, status: number) {
  expect(res.status).toBe(status);
  expect(ErrorBody.parse(res.json).statusCode).toBe(status);
}

describe.each(BACKENDS)('relay tokens on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  let dd: string[];
  const savedUrl = process.env.DATABASE_URL;
  let memberToken: string;
  let other: { token: string; accountId: string };

  beforeAll(async () => {
    backend = await createBackend(kind);
    if (backend.databaseUrl) process.env.DATABASE_URL = backend.databaseUrl;
    else delete process.env.DATABASE_URL;
    t = await startTestBroker(backend, { heartbeatIntervalMs: 500 });
    dd = ['--data-dir', backend.dataDir];
    other = await t.addAccount('other');
    memberToken = await t.addMember('member@default.test');
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
  });

  it('creates, lists and revokes tokens through the admin socket, shown once, hash stored', async () => {
    const shared = await cli(['relay-token', 'create', 'edge-1', ...dd]);
    expect(shared.code).toBe(0);
    const token = /relay token \(shown once\): (trl_[A-Za-z0-9_-]{43})/.exec(shared.out)?.[1];
    expect(token).toBeDefined();
    expect(shared.out).toMatch(/\(shared\)/);

    const priv = CreateRelayTokenResponse.parse(
      JSON.parse((await cli(['relay-token', 'create', 'home', '--account', 'default', ...dd, '--json'])).out),
    );
    expect(priv.relayToken).toMatchObject({ name: 'home', accountName: 'default', revokedAt: null });
    expect(priv.token.startsWith(priv.relayToken.prefix)).toBe(true);

    const all = await cli(['relay-token', 'list', ...dd]);
    expect(all.out).toMatch(/edge-1/);
    expect(all.out).toMatch(/home/);
    expect(all.out).not.toContain(token!);
    expect(all.out).not.toContain(priv.token);
    const own = RelayTokenInfo.array().parse(
      JSON.parse((await cli(['relay-token', 'list', '--account', 'default', ...dd, '--json'])).out),
    );
    expect(own.map((x) => x.name)).toEqual(['home']);

    const revoked = await cli(['relay-token', 'revoke', priv.relayToken.id, ...dd]);
    expect(revoked).toMatchObject({ code: 0, out: `relay token ${priv.relayToken.id} revoked` });
    expect((await t.broker.services.relayTokens.verify(priv.token)).ok).toBe(false);
    expect((await t.broker.services.relayTokens.verify(token!)).ok).toBe(true);

    const bad = await cli(['relay-token', 'revoke', 'nope', ...dd]);
    expect(bad).toMatchObject({ code: 1, err: 'error: relay token id must be a UUID' });
    const ghost = await cli(['relay-token', 'list', '--account', 'ghost', ...dd]);
    expect(ghost).toMatchObject({ code: 1, err: 'error: unknown account "ghost"' });
  });

  it('lists relays with their state through the admin socket', async () => {
    const created = await t.broker.services.relayTokens.create(null, 'listed');
    const r = new TestRelay(t.broker.url, t.broker.certFile, created.token, 'listed-relay');
    await r.connect();
    try {
      const table = await cli(['relays', 'list', ...dd]);
      expect(table.out).toMatch(/^ID\s+NAME\s+ACCOUNT\s+ADDRESS\s+ONLINE/);
      expect(table.out).toMatch(/listed-relay\s+\(shared\)\s+198\.51\.100\.7\s+true\s+0/);
    } finally {
      r.close();
    }
  });

  it('lets an owner manage the account’s tokens over HTTP; members get 403, other accounts see nothing', async () => {
    const created = await t.api('POST', API_PATHS.relayTokens, {
      token: t.ownerToken,
      body: { name: 'http-1' },
    });
    expect(created.status).toBe(201);
    const body = CreateRelayTokenResponse.parse(created.json);
    expect(body.relayToken.accountName).toBe('default');

    const listed = await t.api('GET', API_PATHS.relayTokens, { token: t.ownerToken });
    expect(listed.status).toBe(200);
    const names = RelayTokenInfo.array()
      .parse(listed.json)
      .map((x) => x.name);
    expect(names).toContain('http-1');
    expect(names).not.toContain('edge-1'); // shared tokens are the operator's
    expect(JSON.stringify(listed.json)).not.toContain(body.token);

    const path = `${API_PATHS.relayTokens}/${body.relayToken.id}`;
    expectError(await t.api('GET', API_PATHS.relayTokens, { token: memberToken }), 403);
    expectError(await t.api('POST', API_PATHS.relayTokens, { token: memberToken, body: { name: 'm' } }), 403);
    expectError(await t.api('DELETE', path, { token: memberToken }), 403);

    const theirs = await t.api('GET', API_PATHS.relayTokens, { token: other.token });
    expect(theirs.json).toEqual([]);
    expectError(await t.api('DELETE', path, { token: other.token }), 404);
    expect((await t.broker.services.relayTokens.verify(body.token)).ok).toBe(true);

    expectError(await t.api('POST', API_PATHS.relayTokens, { token: t.ownerToken, body: { name: '' } }), 400);
    expectError(
      await t.api('POST', API_PATHS.relayTokens, {
        token: t.ownerToken,
        body: { name: 'x', accountId: other.accountId },
      }),
      400,
    );
    expectError(await t.api('DELETE', `${API_PATHS.relayTokens}/nope`, { token: t.ownerToken }), 400);
    expectError(await t.api('GET', API_PATHS.relayTokens), 401);

    const revoked = await t.api('DELETE', path, { token: t.ownerToken });
    expect(revoked.status).toBe(200);
    expect(RelayTokenInfo.parse(revoked.json).revokedAt).toEqual(expect.any(String));
    expect(await t.broker.services.relayTokens.verify(body.token)).toEqual({ ok: false, reason: 'revoked' });
    expect((await t.api('DELETE', path, { token: t.ownerToken })).status).toBe(200);
  });

  it('a member may list the relays that serve the account', async () => {
    const res = await t.api('GET', API_PATHS.relays, { token: memberToken });
    expect(res.status).toBe(200);
    expect(res.json.find((x: { name: string }) => x.name === 'listed-relay')).toMatchObject({
      accountName: null,
      publicAddress: '198.51.100.7',
      online: false,
      lastSeenAt: expect.any(String),
    });
  });

  it('disconnects a relay whose token another process revoked', async () => {
    const created = await t.broker.services.relayTokens.create(null, 'elsewhere');
    const r = new TestRelay(t.broker.url, t.broker.certFile, created.token, 'elsewhere-1');
    await r.connect();
    // Revoked where this broker's listener does not see it: the periodic check must find it.
    if (kind === 'postgres') {
      // Another data directory has no admin socket: the CLI works on the database itself.
      const res = await cli(['relay-token', 'revoke', created.relayToken.id, '--data-dir', tempDir()]);
      expect(res.code).toBe(0);
    } else {
      // PGlite admits one process: write the revocation past the service instead.
      await t.broker.services.db
        .update(relayTokens)
        .set({ revokedAt: new Date() })
        .where(eq(relayTokens.id, created.relayToken.id));
    }
    expect(await r.waitForClose()).toBe(RelayCloseCode.revoked);
  });
});

describe.each(BACKENDS)('relay-token CLI without a broker on %s', (kind) => {
  it('works directly on the database', async () => {
    const backend = await createBackend(kind);
    const savedUrl = process.env.DATABASE_URL;
    if (backend.databaseUrl) process.env.DATABASE_URL = backend.databaseUrl;
    else delete process.env.DATABASE_URL;
    try {
      const dd = ['--data-dir', backend.dataDir];
      expect((await cli(['accounts', 'create', 'acme', '--owner-email', 'o@acme.test', ...dd])).code).toBe(0);
      const created = JSON.parse(
        (await cli(['relay-token', 'create', 'r1', '--account', 'acme', ...dd, '--json'])).out,
      );
      expect(created.relayToken.accountName).toBe('acme');
      const list = await cli(['relay-token', 'list', ...dd]);
      expect(list.out).toMatch(/r1\s+acme/);
      expect((await cli(['relay-token', 'revoke', created.relayToken.id, ...dd])).code).toBe(0);
      const relays = await cli(['relays', 'list', ...dd, '--json']);
      expect(JSON.parse(relays.out)).toEqual([]);
    } finally {
      if (savedUrl === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = savedUrl;
      await backend.dispose();
    }
  });
});
