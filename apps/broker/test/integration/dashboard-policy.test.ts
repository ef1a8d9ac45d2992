import { API_PATHS, DnsSettings, PolicyCheckResult, PolicyDocument } from '@trellis/proto';
import type { Page, Request } from 'playwright-core';
import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(120_000);

/** Only ssh from laptop-1 to db-1, and a test that says so. */
const SSH_ONLY = `{
  "rules": [
    { "src": ["laptop-1"], "dst": ["db-1"], "ports": ["tcp:22"] } // ssh only
  ],
  "tests": [{ "src": "laptop-1", "accept": ["db-1:22"], "deny": ["db-1:80"] }]
}
`;
/** Valid JSON, but its test expects ssh where only icmp is open. */
const FAILING_TEST = `{
  "rules": [{ "src": ["*"], "dst": ["*"], "ports": ["icmp"] }],
  "tests": [{ "src": "laptop-1", "accept": ["db-1:22"] }]
}
`;
const INVALID = `{
  "rules": [
    { "src": ["*"], "dst": ["*"], "ports": ["tcp:0"] }
  ]
}
`;

/** The policy and DNS pages of the built dashboard, in real Chromium against a real broker. */
describe('the dashboard in Chromium: access policy and DNS', () => {
  let h: DashboardHarness;
  let owner: Page;
  let memberToken: string;
  /** The owner's bearer token (startDashboard's password reset ended the fixture's). */
  let ownerToken: string;
  const apiAs = (token: string, method: string, path: string, body?: unknown) =>
    h.t.api(method, path, { token, ...(body === undefined ? {} : { body }) });

  beforeAll(async () => {
    h = await startDashboard();
    await h.t.device().enroll(h.t.setupKey, { name: 'laptop-1' });
    await h.t.device().enroll(h.t.setupKey, { name: 'db-1' });
    memberToken = await h.t.addMember('member@policy.test');
    const login = await h.t.api('POST', API_PATHS.login, {
      body: { email: h.ownerEmail, password: OWNER_PASSWORD },
    });
    ownerToken = login.json.token as string;
    owner = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/policy');
    await owner.getByRole('heading', { name: 'Access policy' }).waitFor();
  });
  afterAll(() => h?.close());

  const editor = (page: Page) => page.getByRole('textbox', { name: 'Policy file' });
  const verdict = (page: Page) => page.getByTestId('check-verdict');
  const applyButton = (page: Page) => page.getByRole('button', { name: 'Apply', exact: true });

  it('shows a located error as the admin types an invalid policy, checking after a pause, one request at a time', async () => {
    let checks = 0;
    let inFlight = 0;
    let mostInFlight = 0;
    const isCheck = (r: Request) => r.method() === 'POST' && r.url().endsWith(`${API_PATHS.policy}/check`);
    const done = (r: Request) => {
      if (isCheck(r)) inFlight--;
    };
    owner.on('request', (r) => {
      if (!isCheck(r)) return;
      checks++;
      mostInFlight = Math.max(mostInFlight, ++inFlight);
    });
    owner.on('requestfinished', done);
    owner.on('requestfailed', done);
    await editor(owner).fill('');
    await editor(owner).pressSequentially(INVALID, { delay: 10 });
    const expected = PolicyCheckResult.parse(
      (await apiAs(ownerToken, 'POST', `${API_PATHS.policy}/check`, { text: INVALID })).json,
    );
    expect(expected.errors.length).toBeGreaterThan(0);
    const first = expected.errors[0]!;
    expect(first.line).toBe(3);
    const problems = owner.getByRole('list', { name: 'Problems' });
    await problems.getByText(`error: ${first.message}`).waitFor();
    await problems.getByRole('button', { name: `${first.line}:${first.column}` }).waitFor();
    await verdict(owner)
      .getByText(/^\d+ errors?\.$/)
      .waitFor();
    expect(await applyButton(owner).isDisabled()).toBe(true);
    // Typed key by key with pauses far below the debounce: a few checks (a busy machine may pause
    // longer now and then), not one per key, and never two at once.
    expect(checks).toBeGreaterThanOrEqual(1);
    expect(checks).toBeLessThan(INVALID.length / 4);
    expect(mostInFlight).toBe(1);
  });

  it('a policy whose test fails cannot be applied: the button stays disabled and the broker refuses', async () => {
    await editor(owner).fill(FAILING_TEST);
    await verdict(owner).getByText('1 of 1 test failed.').waitFor();
    await owner
      .getByRole('list', { name: 'Problems' })
      .getByText(/test failed: laptop-1 -> db-1:22 is denied/)
      .waitFor();
    await owner.getByRole('button', { name: 'Plan' }).click();
    await owner.getByText('The plan found 1 error: nothing can be applied until they are fixed.').waitFor();
    expect(await applyButton(owner).isDisabled()).toBe(true);
    const refused = await apiAs(ownerToken, 'PUT', API_PATHS.policy, { text: FAILING_TEST });
    expect(refused.status).toBe(422);
    expect(refused.json.message).toMatch(/test failed/);
    expect(PolicyDocument.parse((await apiAs(ownerToken, 'GET', API_PATHS.policy)).json).version).toBe(0);
  });

  it('a valid change, planned then applied, is in history and in force; editing after the plan blocks apply', async () => {
    await editor(owner).fill(SSH_ONLY);
    await verdict(owner).getByText('Valid; 2 tests, all passed.').waitFor();
    expect(await applyButton(owner).isDisabled()).toBe(true); // not planned yet
    await owner.getByRole('button', { name: 'Plan' }).click();
    const plan = owner.getByRole('status', { name: 'Plan' });
    await plan.getByText(/Compared with version 0: 2 devices would change/).waitFor();
    const laptop = plan.locator('[data-plan-device="laptop-1"]');
    await laptop
      .getByText('− may no longer open tcp 1-21,23-65535; udp; icmp; other protocols on db-1')
      .waitFor();
    await laptop.getByText('− db-1 may no longer open everything on it').waitFor();
    expect(await applyButton(owner).isEnabled()).toBe(true);
    await h.screenshot(owner, 'policy-plan');

    // Changed after planning: the plan no longer holds.
    await editor(owner).fill(`${SSH_ONLY}\n`);
    expect(await applyButton(owner).isDisabled()).toBe(true);
    await editor(owner).fill(SSH_ONLY);
    await owner.getByRole('button', { name: 'Plan' }).click();
    await plan.waitFor();
    await applyButton(owner).click();
    await owner.getByText('Applied version 1: 2 devices changed.').waitFor();
    const row = owner.locator('tr[data-version="1"]');
    await row.getByText(h.ownerEmail).waitFor();
    await row.getByText('1 (in force)').waitFor();
    const inForce = PolicyDocument.parse((await apiAs(memberToken, 'GET', API_PATHS.policy)).json);
    expect(inForce).toMatchObject({ version: 1, text: SSH_ONLY, appliedBy: h.ownerEmail });
    await h.screenshot(owner, 'policy');
  });

  it('explain shows the verdict and the rule that decides', async () => {
    await owner.fill('input[name=src]', 'laptop-1');
    await owner.fill('input[name=dst]', 'db-1');
    await owner.fill('input[name=port]', '22');
    await owner.getByRole('button', { name: 'Ask' }).click();
    const answer = owner.getByRole('status', { name: 'Verdict' });
    await answer.getByText('Allowed').waitFor();
    await answer.getByText(/by rule 1 \(line 3\)/).waitFor();
    await answer.getByText(/"ports": \["tcp:22"\]/).waitFor();
    await owner.fill('input[name=port]', '80');
    await owner.getByRole('button', { name: 'Ask' }).click();
    await answer.getByText('Denied').waitFor();
    expect(await answer.getByText(/by rule/).count()).toBe(0);
  });

  it('warns when the plan is against a version applied meanwhile; rolls back after a confirm', async () => {
    const allAgain = `{ "rules": [{ "src": ["*"], "dst": ["*"] }] }\n`;
    expect((await apiAs(ownerToken, 'PUT', API_PATHS.policy, { text: allAgain })).status).toBe(200);
    // Applied elsewhere while this page shows version 1: its plan says so.
    await owner.getByRole('button', { name: 'Plan' }).click();
    await owner
      .getByText('Someone applied version 2 since this page read version 1', { exact: false })
      .waitFor();
    await owner.reload();
    const row = owner.locator('tr[data-version="1"]');
    await row.getByRole('button', { name: 'Roll back' }).click();
    await row.getByRole('button', { name: 'Roll back to version 1' }).click();
    await owner.getByText('Rolled back as version 3: 2 devices changed.').waitFor();
    await owner.locator('tr[data-version="3"]').getByText('rollback to 1').waitFor();
    const inForce = PolicyDocument.parse((await apiAs(ownerToken, 'GET', API_PATHS.policy)).json);
    expect(inForce).toMatchObject({ version: 3, rollbackOf: 1, text: SSH_ONLY });
    expect(await editor(owner).inputValue()).toBe(SSH_ONLY);
  });

  it('a member reads the policy and its history and may ask, but has no way to change it (API: 403)', async () => {
    const member = await h.signedIn('member@policy.test', 'member-pass-1', '/policy');
    await member.getByRole('heading', { name: 'Access policy' }).waitFor();
    expect(await editor(member).inputValue()).toBe(SSH_ONLY);
    expect(await editor(member).getAttribute('readonly')).not.toBeNull();
    for (const name of ['Apply', 'Plan', 'Roll back']) {
      expect(await member.getByRole('button', { name, exact: true }).count()).toBe(0);
    }
    await member.locator('tr[data-version="1"]').waitFor();
    await member.fill('input[name=src]', 'laptop-1');
    await member.fill('input[name=dst]', 'db-1');
    await member.getByRole('button', { name: 'Ask' }).click();
    await member.getByRole('status', { name: 'Verdict' }).getByText('Allowed').waitFor();
    expect((await apiAs(memberToken, 'PUT', API_PATHS.policy, { text: SSH_ONLY })).status).toBe(403);
    expect((await apiAs(memberToken, 'POST', `${API_PATHS.policy}/rollback`, { version: 1 })).status).toBe(
      403,
    );
    expect((await apiAs(memberToken, 'PUT', API_PATHS.dns, { meshOnly: true })).status).toBe(403);
    await member.goto(`${h.t.broker.url}/dns`);
    await member.getByRole('heading', { name: 'DNS' }).waitFor();
    expect(await member.getByRole('checkbox').count()).toBe(0);
    await member.context().close();
  });

  it('the DNS page shows the zone and names, and the mesh-only switch flips (the API says so)', async () => {
    await owner.goto(`${h.t.broker.url}/dns`);
    await owner.getByText('default.trellis.internal', { exact: false }).first().waitFor();
    await owner.locator('tr[data-name="db-1.default.trellis.internal"]').waitFor();
    await owner.getByTestId('dns-mode').getByText('Public').waitFor();
    await owner.getByRole('checkbox', { name: /Mesh only/ }).click();
    await owner.getByTestId('dns-mode').getByText('Mesh only').waitFor();
    const settings = DnsSettings.parse((await apiAs(memberToken, 'GET', API_PATHS.dns)).json);
    expect(settings).toMatchObject({ meshOnly: true, accountZone: 'default.trellis.internal' });
    await owner.getByRole('checkbox', { name: /Mesh only/ }).click();
    await owner.getByTestId('dns-mode').getByText('Public').waitFor();
    expect(DnsSettings.parse((await apiAs(ownerToken, 'GET', API_PATHS.dns)).json).meshOnly).toBe(false);
    await h.screenshot(owner, 'dns');
  });
});
