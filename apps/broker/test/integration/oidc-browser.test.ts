import { API_PATHS, type DeviceAuthResponse, PROTOCOL_VERSION } from '@trellis/proto';
import type { Page } from 'playwright-core';
import { type DashboardHarness, startDashboard } from '../support/dashboard-browser';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider';

jest.setTimeout(120_000);

const CLIENT = {
  client_id: 'trellis-dashboard',
  client_secret: 'client-secret-of-the-browser-test-0123456789',
};

/**
 * OpenID Connect sign-in in real Chromium: the dashboard's button, the real provider's login page
 * (oidc-provider's development page: any password), and back on the dashboard signed in.
 */
describe('the dashboard in Chromium: sign in with an OpenID Connect provider', () => {
  let provider: TestOidcProvider;
  let h: DashboardHarness;
  beforeAll(async () => {
    provider = await startOidcProvider({
      erin: { email: 'erin@example.test', email_verified: true },
      frank: { email: 'frank@example.test', email_verified: true },
      mallory: { email: 'mallory@example.test', email_verified: false },
    });
    h = await startDashboard({
      oidc: {
        issuer: provider.issuer,
        clientId: CLIENT.client_id,
        clientSecret: CLIENT.client_secret,
        name: 'Test IdP',
      },
    });
    await provider.registerClient({
      ...CLIENT,
      redirect_uris: [`${h.t.broker.url}${API_PATHS.oidcCallback}`],
    });
  });
  afterAll(async () => {
    await h?.close();
    await provider?.stop();
  });

  /** At the provider's login page: its development form takes the login name and any password. */
  const signInAtProvider = async (page: Page, login: string) => {
    await page.waitForURL((url) => url.origin === provider.issuer);
    await page.fill('input[name=login]', login);
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
  };

  it('the button takes the user to the provider and back to the dashboard, signed in with the configured role', async () => {
    const page = await (await h.browser.newContext()).newPage();
    await page.goto(`${h.t.broker.url}/devices`);
    const button = page.getByRole('button', { name: 'Sign in with Test IdP' });
    await button.waitFor();
    await h.screenshot(page, 'oidc-sign-in-page');
    await button.click();
    await signInAtProvider(page, 'erin');
    await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 15_000 });
    expect(new URL(page.url()).pathname).toBe('/devices');
    expect(await page.locator('.who').textContent()).toContain('erin@example.test (member, default)');
    await page.getByText('No devices yet').waitFor();
    await h.screenshot(page, 'oidc-signed-in');
  });

  it('from the device page, the sign-in comes back to it with the code in its fragment', async () => {
    const started = await h.t.api('POST', API_PATHS.deviceAuth, {
      body: {
        protocolVersion: PROTOCOL_VERSION,
        publicKey: h.t.device().keys.publicKey,
        name: 'laptop',
        hostname: 'laptop.local',
        os: 'linux 6.1',
      },
    });
    expect(started.status).toBe(200);
    const { userCode, verificationUriComplete } = started.json as DeviceAuthResponse;
    const page = await (await h.browser.newContext()).newPage();
    await page.goto(verificationUriComplete);
    await page.getByRole('button', { name: 'Sign in with Test IdP' }).click();
    await signInAtProvider(page, 'frank');
    await page.getByRole('button', { name: 'Approve' }).waitFor({ timeout: 15_000 });
    expect(new URL(page.url()).pathname).toBe('/device');
    expect(new URL(page.url()).hash).toBe(`#code=${userCode}`);
    await page.getByText('laptop.local').first().waitFor();
  });

  it('an unverified email ends on the sign-in page with the reason', async () => {
    const page = await (await h.browser.newContext()).newPage();
    await page.goto(`${h.t.broker.url}/devices`);
    await page.getByRole('button', { name: 'Sign in with Test IdP' }).click();
    await signInAtProvider(page, 'mallory');
    await page.getByRole('alert').getByText('has not verified your email').waitFor({ timeout: 15_000 });
    // The reason is taken out of the address bar; the password form is still there.
    expect(new URL(page.url()).search).toBe('');
    expect(await page.locator('input[name=password]').count()).toBe(1);
    await h.screenshot(page, 'oidc-unverified');
  });
});
