import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { tempDir } from '../support/backends';
import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';

jest.setTimeout(120_000);

const RELAY_CLI = resolve(__dirname, '../../../relay/dist/cli.js');

/** Splits the page's command as a shell would (it quotes only with single quotes). */
function shellWords(command: string): string[] {
  return [...command.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2]!,
  );
}

/**
 * Runs the command exactly as the page shows it, plus flags that keep a test relay to itself (no
 * TCP fallback on 443, no metrics port, no nftables, a private state directory).
 */
function runShownCommand(command: string): { proc: ChildProcess; ready: Promise<void> } {
  const [assignment, bin, ...args] = shellWords(command);
  expect(bin).toBe('trellis-relay');
  const [envName, token] = assignment!.split('=') as [string, string];
  expect(envName).toBe('TRELLIS_RELAY_TOKEN');
  const isolation = ['--tcp-listen', 'off', '--metrics-listen', 'off', '--kernel-forwarding', 'off'];
  const proc = spawn(
    process.execPath,
    [RELAY_CLI, ...args, ...isolation, '--ports', '47310-47319', '--state-dir', tempDir('relay-state-')],
    { env: { PATH: process.env.PATH, TRELLIS_RELAY_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const ready = new Promise<void>((ok, fail) => {
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      // Ready is printed before the link to the broker is up: online once the broker welcomed it.
      if (output.includes('trellis-relay ready') && output.includes('broker welcomed this relay')) ok();
    };
    proc.stdout!.on('data', seen);
    proc.stderr!.on('data', seen);
    proc.on('exit', (code) => fail(new Error(`trellis-relay exited (${code}) before ready:\n${output}`)));
  });
  return { proc, ready };
}

/** The relays page in real Chromium: a private relay token, the command that runs it, revocation. */
describe('the dashboard in Chromium: relays', () => {
  let h: DashboardHarness;
  let relay: ChildProcess | undefined;
  beforeAll(async () => {
    h = await startDashboard();
  });
  afterAll(async () => {
    relay?.kill();
    await h?.close();
  });

  it('creates a token shown once with its command; the relay it runs shows as private and online; revoking drops it', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/relays');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
    await page.getByRole('heading', { name: 'Relays' }).waitFor();
    await page.getByText('No relay serves this account yet.').waitFor();
    await page.getByText('No private relay tokens.').waitFor();

    const form = page.getByRole('form', { name: 'Create a relay token' });
    await form.locator('input[name=name]').fill('Home Relay');
    await form.locator('input[name=publicAddress]').fill('127.0.0.1');
    await form.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.getByTestId('new-relay-token').textContent())!;
    expect(token).toMatch(/^trl_[A-Za-z0-9_-]{43}$/);
    const command = (await page.getByTestId('relay-command').textContent())!;
    expect(command).toBe(
      `TRELLIS_RELAY_TOKEN=${token} trellis-relay --broker ${h.t.broker.url} --fingerprint ${h.t.broker.fingerprint} --name home-relay --public-address 127.0.0.1`,
    );
    await page.getByRole('button', { name: 'Copy command' }).click();
    await page.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(command);

    // The command works as shown: the relay registers as this account's private relay.
    const run = runShownCommand(command);
    relay = run.proc;
    await run.ready;
    await page.getByRole('button', { name: 'Refresh' }).click();
    const row = page.locator('tr[data-relay="home-relay"]');
    await row.getByText('private').waitFor();
    await row.getByText('online', { exact: true }).waitFor();
    await row.getByText('127.0.0.1').waitFor();
    await row.getByText('0 pairs').waitFor();
    await h.screenshot(page, 'relays');

    // Shown once: after a reload only its prefix is left.
    await page.reload();
    const tokenRow = page.locator('tr[data-relay-token="Home Relay"]');
    await tokenRow.waitFor();
    expect(await page.getByTestId('new-relay-token').count()).toBe(0);
    expect(await page.content()).not.toContain(token);
    await tokenRow.getByText(`${token.slice(0, 8)}`).waitFor();

    // Revoked (after a confirmation): the broker disconnects the relay and the account no longer lists it.
    await tokenRow.getByRole('button', { name: 'Revoke' }).click();
    await tokenRow.getByText(/disconnected at once/).waitFor();
    await tokenRow.getByRole('button', { name: 'Revoke Home Relay' }).click();
    await tokenRow.getByText(/^revoked/).waitFor();
    await page.getByText('No relay serves this account yet.').waitFor();
    expect((await h.t.broker.services.relayTokens.verify(token)).ok).toBe(false);
  });

  it('a member sees neither the relays nor the users page', async () => {
    const account = await h.t.broker.services.accounts.byName('default');
    await h.t.broker.services.users.create(account.id, 'member@relays.test', 'member', 'member-relay-pass');
    for (const path of ['/relays', '/users']) {
      const page = await h.signedIn('member@relays.test', 'member-relay-pass', path);
      await page.getByRole('heading', { name: 'Devices' }).waitFor();
      expect(await page.getByRole('heading', { name: 'Relays' }).count()).toBe(0);
      expect(await page.getByRole('heading', { name: 'Users' }).count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Relays' }).count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Users' }).count()).toBe(0);
      await page.context().close();
    }
  });
});
