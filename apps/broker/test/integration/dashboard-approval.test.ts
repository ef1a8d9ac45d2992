import { CloseCode } from '@trellis/proto';
import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';
import { signInDevice } from '../support/sign-in-flow';

jest.setTimeout(90_000);

/** Requiring approval of new devices, in Chromium: the setting, the waiting device, the Approve button. */
describe('approving new devices in the dashboard (Chromium)', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard({ deviceAuthIntervalSeconds: 1 });
  });
  afterAll(() => h?.close());

  it('the owner turns approval on; a device a member signs in waits in the list until the owner approves it', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/settings');
    const toggle = page.locator('input[name=requireDeviceApproval]');
    // The box shows what the broker says: it ticks once the change is in.
    await toggle.click();
    await page.locator('input[name=requireDeviceApproval]:checked:not([disabled])').waitFor();
    const account = await h.t.broker.services.accounts.byName('default');
    expect(await h.t.broker.services.accountSettings.get(account.id)).toEqual({
      requireDeviceApproval: true,
    });

    const memberToken = await h.t.addMember('member@approval.test');
    const device = h.t.device();
    await page.getByRole('button', { name: 'Devices' }).click();
    await page.getByText('No devices yet').waitFor();
    await signInDevice(h.t, device, 'members-phone', memberToken);
    const row = page.locator('tr[data-device="members-phone"]');
    await row.locator('td.pending', { hasText: 'awaiting approval' }).waitFor();
    await page.selectOption('select[name=status]', 'pending');
    await page.getByTestId('device-count').getByText('1 device match').waitFor();
    await h.screenshot(page, 'device-awaiting-approval');

    await row.getByRole('button', { name: 'Approve' }).click();
    // No longer waiting: it leaves the filtered list, and shows as an ordinary (offline) device.
    await row.waitFor({ state: 'detached' });
    await page.selectOption('select[name=status]', '');
    await row.locator('td.offline').waitFor();
    expect(await row.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await device.connect();
    await row.locator('td.online').waitFor();

    // Re-key: the device lost its key; the owner gives it the one its new install shows.
    const fresh = h.t.device().keys.publicKey;
    await row.getByRole('button', { name: 'Edit' }).click();
    const editor = page.locator('tr[data-editing="members-phone"]');
    await editor.locator('input[name=publicKey]').fill(fresh);
    await editor.getByRole('button', { name: 'Save' }).click();
    await editor.waitFor({ state: 'detached' });
    expect(await device.waitForClose()).toBe(CloseCode.keyChanged);
    const info = await h.t.broker.services.devices.one(account.id, account.name, 'members-phone');
    expect(info.publicKey).toBe(fresh);
  });
});
