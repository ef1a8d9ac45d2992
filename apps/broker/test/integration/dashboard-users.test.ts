import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(120_000);

const EMAIL = 'colleague@browser.test';
const PASSWORD = 'colleague-pass-123';

/** The users page in real Chromium: add a member, promote them, remove them and end their session. */
describe('the dashboard in Chromium: users and roles', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard();
  });
  afterAll(() => h?.close());

  it('the owner adds a member, makes them admin (they see admin pages) and removes them (their session ends)', async () => {
    const owner = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/users');
    await owner.getByRole('heading', { name: 'Users' }).waitFor();
    const ownerRow = owner.locator(`tr[data-user="${h.ownerEmail}"]`);
    await ownerRow.getByText('(you)').waitFor();
    // Nobody changes their own role or removes themselves: the page offers neither.
    expect(await ownerRow.getByRole('button', { name: 'Remove' }).count()).toBe(0);
    expect(await ownerRow.locator('select').count()).toBe(0);

    const form = owner.getByRole('form', { name: 'Add a user' });
    await form.locator('input[name=email]').fill('Colleague@Browser.TEST');
    await form.locator('select[name=role]').selectOption('member');
    await form.locator('input[name=password]').fill(PASSWORD);
    await form.getByRole('button', { name: 'Add user' }).click();
    const row = owner.locator(`tr[data-user="${EMAIL}"]`);
    await row.waitFor();
    await owner.getByText(`${EMAIL} added as member`).waitFor();
    await h.screenshot(owner, 'users');

    // The new member signs in and sees no admin page, even when asking for one.
    const member = await h.signedIn(EMAIL, PASSWORD, '/users');
    expect(new URL(member.url()).pathname).toBe('/users');
    expect(await member.getByRole('heading', { name: 'Users' }).count()).toBe(0);
    expect(await member.getByRole('button', { name: 'Users' }).count()).toBe(0);
    expect(await member.getByRole('button', { name: 'Setup keys' }).count()).toBe(0);

    // Promoted, they see the admin pages on their next load, with the session they hold.
    await row.getByRole('combobox', { name: `Role of ${EMAIL}` }).selectOption('admin');
    await owner.getByText(`${EMAIL} is now an admin`).waitFor();
    await member.reload();
    await member.getByRole('button', { name: 'Users' }).click();
    await member.getByRole('heading', { name: 'Users' }).waitFor();
    // An admin may not touch an owner, nor grant roles: no role picker, no remove button for the owner.
    const ownerSeenByAdmin = member.locator(`tr[data-user="${h.ownerEmail}"]`);
    await ownerSeenByAdmin.waitFor();
    expect(await ownerSeenByAdmin.getByRole('button', { name: 'Remove' }).count()).toBe(0);
    expect(await member.locator('form[aria-label="Add a user"] select option').allTextContents()).toEqual([
      'member',
    ]);

    // Removal says what happens before it is done, then ends the member's open session.
    await row.getByRole('button', { name: 'Remove' }).click();
    await row.getByText(/signed out everywhere at once/).waitFor();
    await row.getByRole('button', { name: `Remove ${EMAIL}` }).click();
    await owner.getByText(`${EMAIL} removed: 1 session ended, 0 devices removed`).waitFor();
    expect(await owner.locator(`tr[data-user="${EMAIL}"]`).count()).toBe(0);

    await member.reload();
    await member.locator('input[name=password]').waitFor();
    expect(await member.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
  });
});
