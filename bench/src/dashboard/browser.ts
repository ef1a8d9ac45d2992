import { createHash, X509Certificate } from 'node:crypto';
import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { BrokerHttpClient } from '../http-client';
import { percentile } from '../stats';
import type { LatencyRow } from './api-latency';

/** Debian's chromium, driven by playwright-core: nothing is downloaded. */
const CHROMIUM = '/usr/bin/chromium';

export async function launch(certPem: string): Promise<Browser> {
  const key = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const pin = createHash('sha256').update(key).digest('base64');
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root cannot use Chromium's sandbox; the broker's self-signed certificate is pinned.
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${pin}`],
  });
}

/** A tab signed in to the dashboard through its form, as a user would be. */
export async function signedInTab(
  browser: Browser,
  url: string,
  email: string,
  password: string,
): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${url}/devices`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.getByRole('button', { name: 'Sign out' }).waitFor({ timeout: 30_000 });
  return page;
}

const row = (what: string, s: number[]): LatencyRow => ({
  what,
  p50: percentile(s, 50),
  p95: percentile(s, 95),
  p99: percentile(s, 99),
});

/**
 * From navigation to a drawn device list (its count and first row on screen), `times` times; the
 * baseline is the same navigation to the page that adds a device, which fetches nothing but the
 * session (the app's own start-up cost).
 */
export async function measureNavigation(
  page: Page,
  url: string,
  count: number,
  times: number,
): Promise<LatencyRow[]> {
  const baseline: number[] = [];
  const list: number[] = [];
  for (let i = 0; i < times; i += 1) {
    let t0 = performance.now();
    await page.goto(`${url}${API_PATHS.deviceVerification}`);
    await page.getByRole('heading', { name: 'Add a device' }).waitFor();
    baseline.push(performance.now() - t0);
    t0 = performance.now();
    await page.goto(`${url}/devices`);
    await page.getByTestId('device-count').getByText(`${count} devices`).waitFor();
    await page.locator('tr.device-row').first().waitFor();
    list.push(performance.now() - t0);
  }
  return [
    row('baseline: navigation to "Add a device"', baseline),
    row(`navigation to the device list (${count})`, list),
  ];
}

/**
 * From an admin's change through the API to the open list showing it: the device at the top is
 * renamed back and forth and the new name waited for in the page. The baseline is the API call alone.
 */
export async function measureLiveChange(
  page: Page,
  http: BrokerHttpClient,
  times: number,
): Promise<LatencyRow[]> {
  await page.locator('tr.device-row').first().waitFor();
  const first = DeviceInfo.parse(
    await http.call(
      'GET',
      `${API_PATHS.devices}/${await page.locator('tr.device-row').first().getAttribute('data-device')}`,
    ),
  );
  const api: number[] = [];
  const shown: number[] = [];
  for (let i = 0; i < times; i += 1) {
    const name = i % 2 === 0 ? 'aaa-live-a' : 'aaa-live-b';
    const t0 = performance.now();
    await http.call('PUT', `${API_PATHS.devices}/${first.id}/name`, { name });
    api.push(performance.now() - t0);
    await page.locator(`tr[data-device="${name}"]`).waitFor({ timeout: 10_000 });
    shown.push(performance.now() - t0);
  }
  return [row('baseline: the rename API call', api), row('rename shown in the open list', shown)];
}
