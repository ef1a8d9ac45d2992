import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_PATHS } from '@trellis/proto';
import { createBackend, tempDir } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

/** A built dashboard in miniature: its page and one hashed asset. */
function fakeDashboard(): string {
  const dir = tempDir('trellis-dashboard-');
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>Trellis</title><div id="root"></div>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log("app")');
  return dir;
}

describe('the dashboard: cookie sessions, CSRF and its pages', () => {
  let t: TestBroker & { logs: { lines: Array<Record<string, unknown>> } };
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend, { dashboardDir: fakeDashboard() });
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  const signIn = async () => {
    const res = await t.api('POST', API_PATHS.session, {
      body: { email: 'admin@trellis.local', password: await ownerPassword() },
    });
    expect(res.status).toBe(200);
    const setCookie = String(res.headers['set-cookie']);
    const cookie = /^(__Host-trellis_session=[^;]+)/.exec(setCookie)![1]!;
    return { res, setCookie, cookie, csrf: res.json.csrfToken as string };
  };
  let password: string | undefined;
  const ownerPassword = async () => {
    if (!password) {
      password = 'owner-password-for-tests';
      const account = await t.broker.services.accounts.byName('default');
      await t.broker.services.users.resetOwner(account.id, password);
    }
    return password;
  };

  it('signing in sets an HttpOnly, Secure, SameSite=Strict cookie; the page gets the user and a CSRF token, never the token', async () => {
    const { res, setCookie, cookie } = await signIn();
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/Secure/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(res.json).toMatchObject({ user: { email: 'admin@trellis.local', role: 'owner' } });
    expect(res.json.token).toBeUndefined();
    expect(res.text).not.toContain(cookie.split('=')[1]);
    const who = await t.api('GET', API_PATHS.session, { headers: { cookie } });
    expect(who.status).toBe(200);
    expect(who.json.user.email).toBe('admin@trellis.local');
  });

  it('a change sent with the cookie needs the CSRF header: without it 403, with it done', async () => {
    const { cookie, csrf } = await signIn();
    const body = { name: 'from-dashboard' };
    const bare = await t.api('POST', API_PATHS.setupKeys, { headers: { cookie }, body });
    expect(bare.status).toBe(403);
    expect(bare.json).toMatchObject({ code: 'csrf' });
    const wrong = await t.api('POST', API_PATHS.setupKeys, {
      headers: { cookie, 'x-trellis-csrf': `${csrf}x` },
      body,
    });
    expect(wrong.status).toBe(403);
    const ok = await t.api('POST', API_PATHS.setupKeys, {
      headers: { cookie, 'x-trellis-csrf': csrf },
      body,
    });
    expect(ok.status).toBe(201);
    // Reading needs no CSRF token; the bearer API needs none either (no ambient credential).
    expect((await t.api('GET', API_PATHS.setupKeys, { headers: { cookie } })).status).toBe(200);
  });

  it('signing out ends the session and clears the cookie; signing out everywhere ends API tokens too', async () => {
    const { cookie, csrf } = await signIn();
    const out = await t.api('DELETE', API_PATHS.session, { headers: { cookie, 'x-trellis-csrf': csrf } });
    expect(out.status).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/^__Host-trellis_session=;.*Max-Age=0/);
    expect((await t.api('GET', API_PATHS.session, { headers: { cookie } })).status).toBe(401);

    const second = await signIn();
    const apiToken = (
      await t.api('POST', API_PATHS.login, {
        body: { email: 'admin@trellis.local', password: await ownerPassword() },
      })
    ).json.token as string;
    const all = await t.api('DELETE', API_PATHS.sessions, {
      headers: { cookie: second.cookie, 'x-trellis-csrf': second.csrf },
    });
    expect(all.status).toBe(200);
    expect(all.json.ended).toBeGreaterThanOrEqual(2);
    expect((await t.api('GET', API_PATHS.devices, { token: apiToken })).status).toBe(401);
    expect((await t.api('GET', API_PATHS.session, { headers: { cookie: second.cookie } })).status).toBe(401);
  });

  it('serves the app for its pages with a strict Content-Security-Policy, hashed assets for good, and never shadows the API', async () => {
    for (const path of ['/', '/device', '/devices']) {
      const page = await t.api('GET', path);
      expect(page.status).toBe(200);
      expect(page.text).toContain('<div id="root">');
      expect(page.headers['content-security-policy']).toMatch(/default-src 'self'; script-src 'self'/);
      expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      expect(page.headers['x-powered-by']).toBeUndefined();
    }
    const asset = await t.api('GET', '/assets/index-abc123.js');
    expect(asset.status).toBe(200);
    expect(asset.headers['cache-control']).toMatch(/immutable/);
    expect((await t.api('GET', '/missing.js')).status).toBe(404);
    // Out of the directory: never a file from outside (a page path gets the app, a file path 404).
    for (const path of ['/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2f..%2fetc%2fpasswd']) {
      const res = await t.api('GET', path);
      expect(res.text).not.toContain('root:');
    }
    expect((await t.api('GET', '/%2e%2e/%2e%2e/etc/hostname.txt')).status).toBe(404);
    const api = await t.api('GET', '/api/v1/no-such-thing');
    expect(api.status).toBe(404);
    expect(api.json).toMatchObject({ statusCode: 404 });
    expect((await t.api('GET', API_PATHS.health)).status).toBe(200);
  });
  it('expired sessions are purged as new ones are made', async () => {
    const { sessions } = await import('../../src/db/schema');
    const { lt, sql } = await import('drizzle-orm');
    await signIn();
    await t.broker.services.db.update(sessions).set({ expiresAt: sql`now() - interval '1 hour'` });
    await signIn();
    const expired = await t.broker.services.db
      .select()
      .from(sessions)
      .where(lt(sessions.expiresAt, new Date()));
    expect(expired).toEqual([]);
  });

  // Last: it leaves this client's address throttled.
  it('failed logins are logged with the address and, after 5, each next attempt waits (exponential backoff)', async () => {
    await t.addMember('throttled@default.test');
    const attempt = (password: string) =>
      t.api('POST', API_PATHS.session, { body: { email: 'throttled@default.test', password } });
    for (let i = 0; i < 5; i++) expect((await attempt('wrong-password-123')).status).toBe(401);
    const refused = await attempt('member-pass-1');
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({
      code: 'rate_limited',
      message: expect.stringMatching(/try again in \d+ s/),
    });
    const failed = t.logs.lines.filter((l) => l.msg === 'login failed');
    expect(failed).toHaveLength(5);
    expect(failed[0]).toMatchObject({ from: '127.0.0.1', email: 'throttled@default.test' });
    expect(JSON.stringify(t.logs.lines)).not.toContain('wrong-password-123');
  });
});
