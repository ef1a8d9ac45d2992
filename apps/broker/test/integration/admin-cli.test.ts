import { statSync } from 'node:fs';
import { join } from 'node:path';
import { API_PATHS, CloseCode } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend, tempDir } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker } from '../support/fixture';

jest.setTimeout(90_000);

describe.each(BACKENDS)('admin CLI on %s', (kind) => {
  let backend: Backend;
  const savedUrl = process.env.DATABASE_URL;

  beforeEach(async () => {
    backend = await createBackend(kind);
    if (backend.databaseUrl) process.env.DATABASE_URL = backend.databaseUrl;
    else delete process.env.DATABASE_URL;
  });
  afterEach(async () => {
    if (savedUrl === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = savedUrl;
    await backend.dispose();
  });

  it('works directly on the database when no broker serves the data directory', async () => {
    const dd = ['--data-dir', backend.dataDir];
    const created = await cli([
      'accounts',
      'create',
      'acme',
      '--owner-email',
      'boss@acme.test',
      ...dd,
      '--json',
    ]);
    expect(created.code).toBe(0);
    const account = JSON.parse(created.out);
    expect(account.account.name).toBe('acme');
    expect(account.generatedPassword).toEqual(expect.any(String));

    const list = await cli(['accounts', 'list', ...dd]);
    expect(list.out).toMatch(/acme/);

    const user = await cli([
      'users',
      'create',
      '--account',
      'acme',
      '--email',
      'ops@acme.test',
      '--role',
      'admin',
      '--password',
      'ops-password-1',
      ...dd,
    ]);
    expect(user.code).toBe(0);
    expect(user.out).toMatch(/ops@acme.test created with role admin/);

    const key = await cli([
      'setup-keys',
      'create',
      '--account',
      'acme',
      '--reusable',
      '--expires',
      '24h',
      '--usage-limit',
      '3',
      ...dd,
      '--json',
    ]);
    expect(key.code).toBe(0);
    const k = JSON.parse(key.out);
    expect(k.setupKey).toMatchObject({ reusable: true, usageLimit: 3, valid: true });
    const keys = await cli(['setup-keys', 'list', '--account', 'acme', ...dd]);
    expect(keys.out).toContain(k.setupKey.prefix);
    expect(keys.out).not.toContain(k.key);

    const revoked = await cli(['setup-keys', 'revoke', '--account', 'acme', k.setupKey.id, ...dd]);
    expect(revoked.code).toBe(0);
    const afterRevoke = JSON.parse(
      (await cli(['setup-keys', 'list', '--account', 'acme', ...dd, '--json'])).out,
    );
    expect(afterRevoke[0].valid).toBe(false);

    const devices = await cli(['devices', 'list', '--account', 'acme', ...dd, '--json']);
    expect(JSON.parse(devices.out)).toEqual([]);
  });

  it('reset-owner gives the owner a new password (shown once) and ends the old sessions', async () => {
    const t = await startTestBroker(backend);
    try {
      const oldToken = t.ownerToken;
      const dd = ['--data-dir', backend.dataDir, '--json'];
      const reset = await cli(['accounts', 'reset-owner', '--account', 'default', ...dd]);
      expect(reset.code).toBe(0);
      const { email, generatedPassword } = JSON.parse(reset.out);
      expect(generatedPassword).toEqual(expect.any(String));
      const login = (password: string) =>
        t.api('POST', API_PATHS.login, { body: { email, password } }).then((r) => r.status);
      expect(await login(generatedPassword)).toBe(200);
      expect(await login(t.broker.bootstrap!.ownerPassword)).toBe(401);
      expect((await t.api('GET', API_PATHS.devices, { token: oldToken })).status).toBe(401);
      const chosen = await cli([
        'accounts',
        'reset-owner',
        '--account',
        'default',
        '--password',
        'my-own-password-1',
        ...dd,
      ]);
      expect(JSON.parse(chosen.out).generatedPassword).toBeUndefined();
      expect(await login('my-own-password-1')).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('reports user errors on one line with exit code 1', async () => {
    const dd = ['--data-dir', backend.dataDir];
    const unknown = await cli(['devices', 'list', '--account', 'ghost', ...dd]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toBe('error: unknown account "ghost"');
    const badName = await cli(['accounts', 'create', 'Not_A_Label', '--owner-email', 'a@b.test', ...dd]);
    expect(badName.code).toBe(1);
    expect(badName.err).toMatch(/^error: account name "Not_A_Label" must be a DNS label/);
    await cli(['accounts', 'create', 'dup', '--owner-email', 'dup@x.test', ...dd]);
    const dup = await cli(['accounts', 'create', 'dup', '--owner-email', 'dup2@x.test', ...dd]);
    expect(dup.err).toMatch(/already exists/);
    const badExpiry = await cli(['setup-keys', 'create', '--account', 'dup', '--expires', 'soon', ...dd]);
    expect(badExpiry.code).toBe(1);
    expect(badExpiry.err).toMatch(/--expires/);
    const badRole = await cli([
      'users',
      'create',
      '--account',
      'dup',
      '--email',
      'r@x.test',
      '--role',
      'god',
      ...dd,
    ]);
    expect(badRole.err).toMatch(/role must be one of/);
    const missing = await cli(['devices', 'remove', '--account', 'dup', 'nothing', ...dd]);
    expect(missing.err).toMatch(/no device "nothing"/);
    expect(`${unknown.err}${badName.err}${missing.err}`).not.toMatch(/\n\s+at /);
  });

  it('goes through the serving broker admin socket (0600), and a removal reaches connected peers', async () => {
    const t = await startTestBroker(backend);
    try {
      const sock = join(backend.dataDir, 'admin.sock');
      expect(statSync(sock).mode & 0o777).toBe(0o600);
      const a = t.device();
      const b = t.device();
      await a.enroll(t.setupKey, { hostname: 'keeper' });
      await b.enroll(t.setupKey, { hostname: 'doomed' });
      await a.connect();
      await b.connect();
      await a.waitForPeers((p) => p.get(b.id)?.online === true);

      const dd = ['--data-dir', backend.dataDir];
      const list = JSON.parse((await cli(['devices', 'list', '--account', 'default', ...dd, '--json'])).out);
      expect(list.map((d: { name: string }) => d.name).sort()).toEqual(['doomed', 'keeper']);
      expect(list.find((d: { name: string }) => d.name === 'doomed').online).toBe(true);

      const removed = await cli(['devices', 'remove', '--account', 'default', 'doomed', ...dd]);
      expect(removed.code).toBe(0);
      expect(removed.out).toMatch(/device doomed .* removed/);
      await a.waitForPeers((p) => !p.has(b.id));
      expect(await b.waitForClose()).toBe(CloseCode.deviceRemoved);

      const key = JSON.parse(
        (await cli(['setup-keys', 'create', '--account', 'default', '--name', 'via-sock', ...dd, '--json']))
          .out,
      );
      const viaHttp = await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken });
      expect(viaHttp.json.map((k: { id: string }) => k.id)).toContain(key.setupKey.id);
      const bad = await cli(['devices', 'list', '--account', 'ghost', ...dd]);
      expect(bad).toMatchObject({ code: 1, err: 'error: unknown account "ghost"' });
      a.close();
    } finally {
      await t.close();
    }
  });

  if (kind === 'postgres') {
    it('direct database path on Postgres still fans a removal out to a broker elsewhere (NOTIFY)', async () => {
      const t = await startTestBroker(backend);
      try {
        const a = t.device();
        const b = t.device();
        await a.enroll(t.setupKey, { hostname: 'stay' });
        await b.enroll(t.setupKey, { hostname: 'go' });
        await a.connect();
        await a.waitForPeers((p) => p.has(b.id));
        // A different data directory: no admin socket there, so the CLI opens Postgres itself.
        const removed = await cli([
          'devices',
          'remove',
          '--account',
          'default',
          b.id,
          '--data-dir',
          tempDir(),
        ]);
        expect(removed.code).toBe(0);
        await a.waitForPeers((p) => !p.has(b.id));
        a.close();
      } finally {
        await t.close();
      }
    });
  }
});
