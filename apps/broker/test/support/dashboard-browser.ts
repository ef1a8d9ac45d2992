import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { BrokerOptions } from '../../src';
import { type Backend, createBackend } from './backends';
import { startTestBroker, type TestBroker } from './fixture';

/** Debian's chromium (apt), driven by playwright-core: nothing is downloaded. */
export const CHROMIUM = '/usr/bin/chromium';
/** The dashboard as `pnpm build` leaves it. */
export const DASHBOARD_DIST = resolve(__dirname, '../../../dashboard/dist');
/** Screenshots from the dashboard's browser tests (kept after the run; ignored by git). */
export const ARTIFACTS_DIR = resolve(__dirname, '../../../../artifacts/dashboard');

export const OWNER_PASSWORD = 'owner-password-for-browser-tests';

/** Chromium's pin for exactly this certificate (its public key's SHA-256): no check is turned off. */
function spkiPin(certFile: string): string {
  const key = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}

export interface DashboardHarness {
  t: TestBroker;
  /** The database under the broker (postgres: its URL, for tests that fill it directly). */
  backend: Backend;
  browser: Browser;
  /** The bootstrap owner of account `default`, with OWNER_PASSWORD. */
  ownerEmail: string;
  /** A new browser context (its own cookies), signed in as this user, on `path`. */
  signedIn(email: string, password: string, path?: string): Promise<Page>;
  screenshot(page: Page, name: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * The real dashboard (apps/dashboard/dist) served by a real broker on loopback, in real headless
 * Chromium. No lab is needed: these tests run with the unit project.
 */
export async function startDashboard(
  overrides: Partial<BrokerOptions> = {},
  backendName: Backend['name'] = 'pglite',
): Promise<DashboardHarness> {
  if (!existsSync(join(DASHBOARD_DIST, 'index.html'))) {
    throw new Error(`the dashboard is not built (${DASHBOARD_DIST}): run \`pnpm build\` first`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  const backend = await createBackend(backendName);
  const t = await startTestBroker(backend, { dashboardDir: DASHBOARD_DIST, ...overrides });
  const account = await t.broker.services.accounts.byName('default');
  await t.broker.services.users.resetOwner(account.id, OWNER_PASSWORD);
  const ownerEmail = t.broker.bootstrap!.ownerEmail;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Root cannot use Chromium's sandbox; the broker's self-signed certificate is pinned.
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spkiPin(t.broker.certFile)}`],
  });
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return {
    t,
    backend,
    browser,
    ownerEmail,
    async signedIn(email, password, path = '/devices') {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${t.broker.url}${path}`);
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', password);
      await page.click('button[type=submit]');
      await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 15_000 });
      return page;
    },
    async screenshot(page, name) {
      const file = join(ARTIFACTS_DIR, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await browser.close();
      await t.close();
      await backend.dispose();
    },
  };
}
