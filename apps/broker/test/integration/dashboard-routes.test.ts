import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(120_000);

/** The routes page in real Chromium: a gateway's pending routes, approved and unapproved by the owner. */
describe('the dashboard in Chromium: routes', () => {
  let h: DashboardHarness;
  let gw: TestDevice;
  beforeAll(async () => {
    h = await startDashboard();
    gw = h.t.device();
    await gw.enroll(h.t.setupKey, { name: 'office-gw' });
    await gw.connect();
  });
  afterAll(async () => {
    gw?.close();
    await h?.close();
  });

  // The owner's password was reset for the browser: ask the service, not the API with the old token.
  const rowsNow = async () => {
    const account = await h.t.broker.services.accounts.byName('default');
    return h.t.broker.services.routes.list(account.id);
  };

  it('shows pending routes with the exit node labelled; approving makes the route primary; unapproving takes it back', async () => {
    gw.send({ type: 'advertise', routes: ['192.168.10.0/24', '0.0.0.0/0'] });
    // Handled in order: once the pong is back, the advertisement is stored.
    const from = gw.messages.length;
    gw.send({ type: 'ping', t: 1 });
    await gw.waitFor((m) => m.type === 'pong', from);
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/routes');
    await page.getByRole('heading', { name: 'Routes' }).waitFor();
    const lan = page.locator('tr[data-route="office-gw 192.168.10.0/24"]');
    const exit = page.locator('tr[data-route="office-gw 0.0.0.0/0"]');
    await lan.getByTestId('approval').getByText('pending').waitFor();
    await exit.getByText('exit node').waitFor();

    await lan.getByRole('button', { name: 'Approve' }).click();
    await lan.getByTestId('approval').getByText('approved', { exact: true }).waitFor();
    await lan.getByTestId('state').getByText('primary').waitFor();
    await exit.getByTestId('approval').getByText('pending').waitFor();
    await h.screenshot(page, 'routes');
    const approved = (await rowsNow()).filter((r) => r.approved).map((r) => r.prefix);
    expect(approved).toEqual(['192.168.10.0/24']);

    await lan.getByRole('button', { name: 'Unapprove' }).click();
    await lan.getByTestId('approval').getByText('pending').waitFor();
    expect((await rowsNow()).some((r) => r.approved)).toBe(false);
  });
});
