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

  it('the owner adds virtual devices through the form: two sites’ hosts at the same LAN address, each listed with its badge and gateway', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD);
    await page
      .getByTestId('device-count')
      .getByText(/devices$/)
      .waitFor();
    await page.getByRole('button', { name: 'Add virtual device' }).click();
    const form = page.getByRole('form', { name: 'Add a virtual device' });
    const add = async (name: string, lanAddress: string, gateway: string) => {
      await form.locator('input[name=name]').fill(name);
      await form.locator('input[name=lanAddress]').fill(lanAddress);
      await form.locator('input[name=gateway]').fill(gateway);
      await form.getByRole('button', { name: 'Add virtual device' }).click();
    };

    // The proto schema refuses it in the page: nothing is sent.
    await add('aaa-printer', '100.64.9.9', nameOf(1));
    await page.getByRole('alert').getByText('LAN address: must not be inside the overlay').waitFor();

    await add('aaa-printer', '192.168.1.100', nameOf(1));
    const printer = page.locator('tr[data-device="aaa-printer"]');
    await printer.locator('.badge', { hasText: 'virtual' }).waitFor();
    expect(await printer.getByTestId('via').textContent()).toBe(`via ${nameOf(1)} · LAN 192.168.1.100`);
    expect(await printer.locator('td.via-gateway').textContent()).toBe('via gateway');

    // The second site's LAN is the same 192.168.1.0/24: its host gets a mesh address of its own.
    await add('aaa-camera', '192.168.1.100', nameOf(2));
    const camera = page.locator('tr[data-device="aaa-camera"]');
    await camera.locator('.badge', { hasText: 'virtual' }).waitFor();
    const addresses = await Promise.all(
      [printer, camera].map((row) => row.locator('td').nth(1).textContent()),
    );
    expect(addresses[0]).toMatch(/^100\./);
    expect(addresses[1]).not.toBe(addresses[0]);
    await h.screenshot(page, 'devices-virtual');

    // The broker refuses a second host at the same LAN address behind the same gateway: its words shown.
    await add('aaa-scanner', '192.168.1.100', nameOf(1));
    await page
      .getByRole('alert')
      .getByText(`192.168.1.100 behind gateway ${nameOf(1)} is the virtual device "aaa-printer" already`)
      .waitFor();
    expect(await page.locator('tr[data-device="aaa-scanner"]').count()).toBe(0);

    // No key to replace, nothing to approve.
    expect(await printer.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await printer.getByRole('button', { name: 'Edit' }).click();
    const editor = page.locator('tr[data-editing="aaa-printer"]');
    await editor.locator('input[name=name]').waitFor();
    expect(await editor.locator('input[name=publicKey]').count()).toBe(0);

    const account = await h.t.broker.services.accounts.byName('default');
    const stored = await h.t.broker.services.devices.one(account.id, account.name, 'aaa-printer');
    expect(stored).toMatchObject({ publicKey: null, lanAddress: '192.168.1.100', online: false });
  });
});
