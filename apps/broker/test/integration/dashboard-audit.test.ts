import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(120_000);

/** The audit log page of the built dashboard in real Chromium: a change made in the dashboard shows up. */
describe('the dashboard in Chromium: audit log', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard();
  });
  afterAll(() => h?.close());

  it('a setup key created in the dashboard appears in the audit log with who and from where', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/setup-keys');
    await page.fill('input[name=name]', 'browser-audit-key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.getByTestId('new-setup-key').textContent())?.trim() ?? '';
    expect(key.length).toBeGreaterThan(20);

    await page.getByRole('button', { name: 'Audit log' }).click();
    const row = page.locator('tr[data-audit-action="setup-key.created"]', { hasText: 'browser-audit-key' });
    await row.waitFor();
    const text = (await row.textContent()) ?? '';
    expect(text).toContain(h.ownerEmail);
    expect(text).toContain('127.0.0.1');
    // The key's prefix is shown, never the key.
    expect(await page.locator('body').textContent()).not.toContain(key);
    await h.screenshot(page, 'audit-log');

    // The filter box narrows the log to the key's events (the broker filters).
    await page.fill('input[name=audit-search]', 'browser-audit');
    const listed = page.locator('tr[data-audit-action]');
    await listed.nth(1).waitFor({ state: 'detached' });
    expect(await listed.count()).toBe(1);
    expect(await listed.first().textContent()).toContain('browser-audit-key');
    await page.selectOption('select[name=audit-kind]', 'device.');
    await page.getByText('No change matches.').waitFor();
  });

  it('pages to older events', async () => {
    const services = h.t.broker.services;
    const account = await services.accounts.byName('default');
    for (let i = 0; i < 60; i++)
      await services.setupKeys.create(account.id, { name: `bulk-${i}`, reusable: false });
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/audit');
    const rows = page.locator('tr[data-audit-action]');
    await page.locator('tr[data-audit-action]', { hasText: 'bulk-59' }).waitFor();
    expect(await rows.count()).toBe(50);
    await page.getByRole('button', { name: 'Older' }).click();
    await page.locator('tr[data-audit-action]', { hasText: 'bulk-0' }).first().waitFor();
    expect(await rows.count()).toBeGreaterThan(60);
    expect(await page.getByRole('button', { name: 'Older' }).count()).toBe(0);
  });

  it('a member has no audit log page and cannot read the log', async () => {
    const account = await h.t.broker.services.accounts.byName('default');
    await h.t.broker.services.users.create(account.id, 'member@audit.test', 'member', 'member-audit-pass');
    const page = await h.signedIn('member@audit.test', 'member-audit-pass', '/audit');
    await page.getByText('No devices yet').waitFor();
    expect(await page.getByRole('button', { name: 'Audit log' }).count()).toBe(0);
    const status = await page.evaluate(async () => (await fetch('/api/v1/audit')).status);
    expect(status).toBe(403);
  });
});
