import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(180_000);

const COUNT = 3000;
const nameOf = (i: number) => `dev-${String(i).padStart(4, '0')}`;

/**
 * The device list at thousands of devices in real Chromium: the broker sends it a page at a time and
 * the page draws only the rows in view; search and status filter on the broker; events keep it live.
 */
describe('the dashboard’s device list with 3,000 devices (Chromium)', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard({}, 'postgres');
    // Thousands of enrollments would take minutes: the rows go straight into the database.
    const db = new Client({ connectionString: h.backend.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query("select id from accounts where name = 'default'");
      const values: string[] = [];
      const params: unknown[] = [];
      for (let i = 1; i <= COUNT; i += 1) {
        const p = params.length;
        values.push(`($${p + 1}, $${p + 2}, $${p + 3}, 'linux', $${p + 4}, $${p + 5}, $${p + 6})`);
        params.push(rows[0].id, nameOf(i), `host-${i}`, randomBytes(32).toString('base64'));
        params.push(`100.64.${Math.floor(i / 250) + 10}.${(i % 250) + 1}`, i % 3 === 0 ? `test-${i}` : null);
      }
      await db.query(
        `insert into devices (account_id, name, hostname, os, public_key, address, connection_id) values ${values.join(',')}`,
        params,
      );
    } finally {
      await db.end();
    }
  });
  afterAll(() => h?.close());

  it('shows the count, draws only a screenful of rows, fetches more as it scrolls to the last device', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD);
    await page.getByTestId('device-count').getByText(`${COUNT} devices`).waitFor();
    await page.locator(`tr[data-device="${nameOf(1)}"]`).waitFor();
    const drawn = await page.locator('tr.device-row').count();
    expect(drawn).toBeGreaterThan(5);
    expect(drawn).toBeLessThan(80);
    await h.screenshot(page, 'devices-3000');

    const last = page.locator(`tr[data-device="${nameOf(COUNT)}"]`);
    for (let i = 0; i < 100 && (await last.count()) === 0; i += 1) {
      await page.locator('.scroll-box').evaluate((el) => {
        el.scrollTop = el.scrollHeight;
      });
      await page.waitForTimeout(50);
    }
    await last.waitFor();
    expect(await page.locator('tr.device-row').count()).toBeLessThan(80);
    expect(await page.locator(`tr[data-device="${nameOf(1)}"]`).count()).toBe(0);
  });

  it('search and status are answered by the broker', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD);
    await page.fill('input[name=search]', 'DEV-2999');
    await page.getByTestId('device-count').getByText('1 device match').waitFor();
    expect(await page.locator('tr.device-row').count()).toBe(1);
    await page.fill('input[name=search]', '');
    await page.selectOption('select[name=status]', 'online');
    await page
      .getByTestId('device-count')
      .getByText(`${COUNT / 3} devices match`)
      .waitFor();
    expect(await page.locator(`tr[data-device="${nameOf(3)}"]`).textContent()).toContain('online');
  });

  it('a device that enrolls and connects while the list is open shows up, then goes online, by itself', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD);
    await page.getByTestId('device-count').getByText(`${COUNT} devices`).waitFor();
    const device = h.t.device();
    await device.enroll(h.t.setupKey, { name: 'aaa-new' });
    const row = page.locator('tr[data-device="aaa-new"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('offline');
    await page
      .getByTestId('device-count')
      .getByText(`${COUNT + 1} devices`)
      .waitFor();
    await device.connect();
    await page.locator('tr[data-device="aaa-new"] td.online').waitFor();
    device.close();
  });
});
