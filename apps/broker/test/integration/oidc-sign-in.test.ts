import { readFileSync } from 'node:fs';
import { API_PATHS, SIGN_IN_ERROR_PARAM, SignInOptions, WebSession } from '@trellis/proto';
import { oidcUser, openSession } from '../../src/oidc/oidc-users';
import { createBackend } from '../support/backends';
import { CookieBrowser } from '../support/cookie-browser';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { oidcSignIn } from '../support/oidc-flow';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider';

jest.setTimeout(90_000);

const CLIENT = { client_id: 'trellis-broker', client_secret: 'client-secret-of-the-test-broker-0123456789' };
const ACCOUNTS = {
  alice: { email: 'alice@example.test', email_verified: true },
  unverified: { email: 'unverified@example.test', email_verified: false },
  carol: { email: 'Carol@Example.test', email_verified: true },
  intruder: { email: 'owner@other.test', email_verified: true },
  device: { email: 'device-user@example.test', email_verified: true },
};

type Broker = TestBroker & { logs: { lines: Array<Record<string, unknown>> } };

async function oidcBroker(provider: TestOidcProvider) {
  const backend = await createBackend('pglite');
  const t: Broker = await startTestBroker(backend, {
    oidc: {
      issuer: provider.issuer,
      clientId: CLIENT.client_id,
      clientSecret: CLIENT.client_secret,
      name: 'Test IdP',
    },
  });
  await provider.registerClient({ ...CLIENT, redirect_uris: [`${t.broker.url}${API_PATHS.oidcCallback}`] });
  return { t, ca: readFileSync(t.broker.certFile), backend };
}

const sessionCookieOf = (cookie: string | undefined) => `__Host-trellis_session=${cookie}`;

describe('OpenID Connect sign-in against a real provider', () => {
  let provider: TestOidcProvider;
  let t: Broker;
  let ca: Buffer;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    provider = await startOidcProvider(ACCOUNTS);
    const b = await oidcBroker(provider);
    t = b.t;
    ca = b.ca;
    dispose = async () => {
      await t.close();
      await b.backend.dispose();
      await provider.stop();
    };
  });
  afterAll(() => dispose());

  const sessionOf = async (cookieValue: string | undefined) => {
    const res = await t.api('GET', API_PATHS.session, { headers: { cookie: sessionCookieOf(cookieValue) } });
    return res.status === 200 ? WebSession.parse(res.json) : null;
  };

  it('tells the dashboard that OIDC is on and the name of its button', async () => {
    const res = await t.api('GET', API_PATHS.signInOptions);
    expect(res.status).toBe(200);
    expect(SignInOptions.parse(res.json)).toEqual({ password: true, oidc: { name: 'Test IdP' } });
  });

  it('signs a new user in: created in the account with the configured role, with a working session', async () => {
    const flow = await oidcSignIn(t.broker.url, ca, 'alice', { returnTo: '/devices' });
    expect(flow.landing).toBe('/devices');
    const start = flow.answers[0]!;
    expect(start.status).toBe(303);
    const authorize = new URL(start.headers.location!);
    expect(authorize.origin).toBe(provider.issuer);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorize.searchParams.get('nonce')).toBeTruthy();
    expect(authorize.searchParams.get('state')).toBeTruthy();
    expect(String(start.headers['set-cookie'])).toMatch(
      /__Host-trellis_oidc=.*HttpOnly.*Secure.*SameSite=Lax/,
    );
    const cookie = flow.browser.cookie(t.broker.url, '__Host-trellis_session');
    expect(cookie).toBeTruthy();
    // The flow cookie is gone once used.
    expect(flow.browser.cookie(t.broker.url, '__Host-trellis_oidc')).toBeUndefined();
    const session = await sessionOf(cookie);
    expect(session?.user).toMatchObject({
      email: 'alice@example.test',
      role: 'member',
      accountName: 'default',
    });
    // The session works for the API, with its CSRF token for changes.
    const devices = await t.api('GET', API_PATHS.devices, { headers: { cookie: sessionCookieOf(cookie) } });
    expect(devices.status).toBe(200);
    const account = await t.broker.services.accounts.byName('default');
    const users = await t.api('GET', API_PATHS.session, { headers: { cookie: sessionCookieOf(cookie) } });
    expect(users.json.user.accountId).toBe(account.id);
    // Signing in again matches the same user (no second one).
    const again = await oidcSignIn(t.broker.url, ca, 'alice');
    const second = await sessionOf(again.browser.cookie(t.broker.url, '__Host-trellis_session'));
    expect(second?.user.id).toBe(session?.user.id);
    expect(again.landing).toBe('/');
  });

  it('matches an existing password user by email (any case): they keep their role and their password', async () => {
    const account = await t.broker.services.accounts.byName('default');
    const carol = await t.broker.services.users.create(
      account.id,
      'carol@example.test',
      'admin',
      'carol-password-1234',
    );
    const flow = await oidcSignIn(t.broker.url, ca, 'carol', { returnTo: '/setup-keys' });
    expect(flow.landing).toBe('/setup-keys');
    const session = await sessionOf(flow.browser.cookie(t.broker.url, '__Host-trellis_session'));
    expect(session?.user).toMatchObject({ id: carol.id, email: 'carol@example.test', role: 'admin' });
    const login = await t.api('POST', API_PATHS.login, {
      body: { email: 'carol@example.test', password: 'carol-password-1234' },
    });
    expect(login.status).toBe(200);
  });

  it('refuses an email the provider has not verified: back on the sign-in page, no user, no session', async () => {
    const flow = await oidcSignIn(t.broker.url, ca, 'unverified', { returnTo: '/devices' });
    expect(flow.landing).toBe(`/devices?${SIGN_IN_ERROR_PARAM}=oidc_unverified`);
    expect(flow.browser.cookie(t.broker.url, '__Host-trellis_session')).toBeUndefined();
    const login = await t.api('POST', API_PATHS.login, {
      body: { email: 'unverified@example.test', password: 'whatever-password' },
    });
    expect(login.status).toBe(401);
    const line = t.logs.lines.find((l) => l.msg === 'OIDC sign-in failed' && l.reason === 'oidc_unverified');
    expect(line).toBeDefined();
  });

  it('refuses a tampered state, and a callback in a browser that did not start the sign-in', async () => {
    const tampered = await oidcSignIn(t.broker.url, ca, 'alice', {
      returnTo: '/devices',
      tamper: (url) => url.searchParams.set('state', `${url.searchParams.get('state')}x`),
    });
    // Back to the page it started from: the flow cookie itself was sound.
    expect(tampered.landing).toBe(`/devices?${SIGN_IN_ERROR_PARAM}=oidc_state`);
    expect(tampered.browser.cookie(t.broker.url, '__Host-trellis_session')).toBeUndefined();
    // The callback URL followed in a browser that did not start the sign-in (no flow cookie).
    const elsewhere = new CookieBrowser(ca);
    const stolen = await oidcSignIn(t.broker.url, ca, 'alice', { callbackBrowser: elsewhere });
    expect(stolen.landing).toBe(`/?${SIGN_IN_ERROR_PARAM}=oidc_state`);
    expect(elsewhere.cookie(t.broker.url, '__Host-trellis_session')).toBeUndefined();
    // Nor with a flow cookie of its own making (it is sealed with a key from the client secret).
    elsewhere.setCookie(t.broker.url, '__Host-trellis_oidc', Buffer.alloc(80, 1).toString('base64url'));
    const forged = await oidcSignIn(t.broker.url, ca, 'alice', { callbackBrowser: elsewhere });
    expect(forged.landing).toBe(`/?${SIGN_IN_ERROR_PARAM}=oidc_state`);
  });

  it("leaves another account's user with that email alone, and refuses the sign-in", async () => {
    const other = await t.addAccount('other');
    const before = await t.api('GET', API_PATHS.session, { token: other.token });
    const flow = await oidcSignIn(t.broker.url, ca, 'intruder', { returnTo: '/devices' });
    expect(flow.landing).toBe(`/devices?${SIGN_IN_ERROR_PARAM}=oidc_other_account`);
    expect(flow.browser.cookie(t.broker.url, '__Host-trellis_session')).toBeUndefined();
    const after = await t.api('GET', API_PATHS.session, { token: other.token });
    expect(after.json.user).toEqual(before.json.user);
    expect(after.json.user).toMatchObject({ role: 'owner', accountName: 'other' });
  });

  it('comes back to a same-origin path only (never an open redirect), and to the device page', async () => {
    for (const bad of ['https://evil.test/x', '//evil.test/x', '/\\evil.test', '/api/v1/devices']) {
      const flow = await oidcSignIn(t.broker.url, ca, 'alice', { returnTo: bad });
      expect(flow.landing).toBe('/');
    }
    const device = await oidcSignIn(t.broker.url, ca, 'device', { returnTo: '/device' });
    expect(device.landing).toBe('/device');
  });

  it('writes neither the code nor the state of a callback into the log', async () => {
    const flow = await oidcSignIn(t.broker.url, ca, 'alice');
    const callback = new URL(flow.callbackUrl!);
    const code = callback.searchParams.get('code')!;
    const state = callback.searchParams.get('state')!;
    expect(code.length).toBeGreaterThan(10);
    // The same URL where the exception filter logs it: a method the route does not have.
    const wrong = await t.api('POST', `${callback.pathname}${callback.search}`, { body: {} });
    expect(wrong.status).toBe(404);
    // And a replay of the used code in its own browser, which fails at the provider.
    await flow.browser.send('GET', flow.callbackUrl!);
    const log = JSON.stringify(t.logs.lines);
    expect(log).toContain(API_PATHS.oidcCallback);
    expect(log).not.toContain(code);
    expect(log).not.toContain(state);
    expect(log).not.toContain(CLIENT.client_secret);
  });
});

describe('OpenID Connect sign-in when the provider is down, and when it is off', () => {
  it('a broker whose provider is down starts; sign-in says so and works once the provider is up', async () => {
    const first = await startOidcProvider(ACCOUNTS);
    const port = first.port;
    await first.stop();
    const down = { issuer: first.issuer, port, registerClient: first.registerClient } as TestOidcProvider;
    const backend = await createBackend('pglite');
    const t: Broker = await startTestBroker(backend, {
      oidc: {
        issuer: down.issuer,
        clientId: CLIENT.client_id,
        clientSecret: CLIENT.client_secret,
        role: 'admin',
      },
    });
    const ca = readFileSync(t.broker.certFile);
    let provider: TestOidcProvider | undefined;
    try {
      const refused = await oidcSignIn(t.broker.url, ca, 'alice', { returnTo: '/device' });
      expect(refused.answers[0]!.headers.location).toBe(`/device?${SIGN_IN_ERROR_PARAM}=oidc_unavailable`);
      provider = await startOidcProvider(ACCOUNTS, port);
      await provider.registerClient({
        ...CLIENT,
        redirect_uris: [`${t.broker.url}${API_PATHS.oidcCallback}`],
      });
      const flow = await oidcSignIn(t.broker.url, ca, 'alice', { returnTo: '/device' });
      expect(flow.landing).toBe('/device');
      // Users it creates get the configured role.
      const cookie = flow.browser.cookie(t.broker.url, '__Host-trellis_session');
      const session = await t.api('GET', API_PATHS.session, { headers: { cookie: sessionCookieOf(cookie) } });
      expect(session.json.user).toMatchObject({ email: 'alice@example.test', role: 'admin' });
      // The button's name defaults to the issuer's host.
      const options = await t.api('GET', API_PATHS.signInOptions);
      expect(options.json).toEqual({ password: true, oidc: { name: '127.0.0.1' } });
    } finally {
      await t.close();
      await backend.dispose();
      await provider?.stop();
    }
  });

  it('without OIDC configured, the options say so and a start goes back to the sign-in page', async () => {
    const backend = await createBackend('pglite');
    const t = await startTestBroker(backend);
    try {
      const options = await t.api('GET', API_PATHS.signInOptions);
      expect(SignInOptions.parse(options.json)).toEqual({ password: true, oidc: null });
      const start = await t.api('GET', `${API_PATHS.oidcStart}?returnTo=/device`);
      expect(start.status).toBe(303);
      expect(start.headers.location).toBe(`/device?${SIGN_IN_ERROR_PARAM}=oidc_off`);
      const callback = await t.api('GET', `${API_PATHS.oidcCallback}?code=abc&state=def`);
      expect(callback.headers.location).toBe(`/?${SIGN_IN_ERROR_PARAM}=oidc_off`);
    } finally {
      await t.close();
      await backend.dispose();
    }
  });

  it('refuses to start with an OIDC account that does not exist, saying which', async () => {
    const backend = await createBackend('pglite');
    try {
      await expect(
        startTestBroker(backend, {
          oidc: { issuer: 'https://idp.example.test', clientId: 'c', clientSecret: 's', account: 'nope' },
        }),
      ).rejects.toThrow('--oidc-account "nope" does not exist');
    } finally {
      await backend.dispose();
    }
  });
});

describe('OIDC users on PostgreSQL', () => {
  it('first sign-ins of one new user at the same time make one user, each with a session', async () => {
    const backend = await createBackend('postgres');
    const t = await startTestBroker(backend);
    try {
      const db = t.broker.services.db;
      const users = await Promise.all(
        [1, 2, 3, 4].map(() => oidcUser(db, 'default', 'member', 'Race@Example.test', '127.0.0.1')),
      );
      expect(new Set(users.map((u) => u.id)).size).toBe(1);
      expect(users.filter((u) => u.created)).toHaveLength(1);
      const sessions = await Promise.all(users.map((u) => openSession(db, u, null)));
      for (const s of sessions) {
        const who = await t.api('GET', API_PATHS.session, { token: s.token });
        expect(who.json.user).toMatchObject({ email: 'race@example.test', role: 'member' });
      }
    } finally {
      await t.close();
      await backend.dispose();
    }
  });
});
