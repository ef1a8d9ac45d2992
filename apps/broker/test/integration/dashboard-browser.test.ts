import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(90_000);

/** The built dashboard in real Chromium: the bar shows each user the pages their role may open. */
describe('the dashboard in Chromium: pages by role', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard();
  });
  afterAll(() => h?.close());

  it('the owner sees every page in the bar and lands on the devices list', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD);
    await page.getByRole('button', { name: 'Setup keys' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/devices');
    await page.getByText('No devices yet').waitFor();
    await h.screenshot(page, 'owner-devices');
  });

  it('a member asking for an admin page gets the devices list, and the bar has no admin page', async () => {
    const account = await h.t.broker.services.accounts.byName('default');
    await h.t.broker.services.users.create(
      account.id,
      'member@browser.test',
      'member',
      'member-browser-pass',
    );
    const page = await h.signedIn('member@browser.test', 'member-browser-pass', '/setup-keys');
    await page.getByText('No devices yet').waitFor();
    expect(await page.getByRole('button', { name: 'Setup keys' }).count()).toBe(0);
  });
});
