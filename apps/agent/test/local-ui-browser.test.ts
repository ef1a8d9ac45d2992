import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { Agent } from '../src/agent/agent';
import type { LocalUiServer } from '../src/ui/ui-server';
import { BrokerDouble } from './helpers/broker-double';
import { startUi, UI_WEB_DIST } from './helpers/local-ui';
import { makeSelfSignedCert } from './helpers/self-signed-cert';
import { newTestAgent } from './helpers/test-agent';

/** Debian's chromium (apt), driven by playwright-core: nothing is downloaded. */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(__dirname, '../../../artifacts/tray');

jest.setTimeout(90_000);
const cert = makeSelfSignedCert();

describe('the local UI in Chromium, served by a test daemon', () => {
  let broker: BrokerDouble;
  let brokerUrl: string;
  let dir: string;
  let agent: Agent;
  let ui: LocalUiServer;
  let link: string;
  let browser: Browser;
  const logs: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(UI_WEB_DIST, 'app.js')))
      throw new Error(`${UI_WEB_DIST} is not built: run \`pnpm build\``);
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
    broker = new BrokerDouble(cert);
    brokerUrl = `https://127.0.0.1:${await broker.listen(0)}`;
    // Two devices already in the account: the netmap shows them as peers once this one joins.
    for (const name of ['build-server', 'nas']) {
      broker.enrollDevice({ publicKey: generateKeyPair().publicKey, name, endpoints: ['192.0.2.10:51820'] });
    }
    dir = mkdtempSync(join(tmpdir(), 'trl-ui-browser-'));
    ({ agent } = newTestAgent(dir, logs, { interfaceName: 'trluib0' }));
    await agent.start();
    const started = await startUi(agent, logs);
    ui = started.ui;
    const { url, token } = started.token();
    link = `${url}#token=${token}`;
    // Root cannot use Chromium's sandbox.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await ui?.close();
    await agent?.shutdown();
    await broker?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newPage(): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
    return page;
  }
  const badge = (page: Page) => page.locator('#state');
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  it('without the token: no session, nothing of the device shown', async () => {
    const page = await newPage();
    await page.goto(new URL(link).origin);
    await page.locator('#no-session').waitFor();
    expect(await page.locator('#sign-in').isHidden()).toBe(true);
    await page.context().close();
    const wrong = await newPage();
    await wrong.goto(`${new URL(link).origin}/#token=${'W'.repeat(43)}`);
    await wrong.locator('#error').getByText('wrong token').waitFor();
    expect(await wrong.locator('#no-session').isVisible()).toBe(true);
    await wrong.context().close();
    pageErrors.length = 0; // the refused requests' 401s are expected console noise
  });

  it('signs in, shows the code and the verification link, then status and peers; disconnect and connect', async () => {
    const page = await newPage();
    await page.goto(link);
    await badge(page).getByText('Not signed in').waitFor();
    expect(page.url()).not.toContain('token'); // out of the address bar and the history
    await page.fill('input[name=broker]', brokerUrl);
    await page.click('summary');
    await page.fill('input[name=name]', 'laptop');
    await page.fill('input[name=fingerprint]', cert.fingerprint);
    await page.click('button[type=submit]');

    const code = page.locator('#user-code');
    await code.waitFor();
    const first = broker.signIns.latest().userCode;
    expect(await code.textContent()).toBe(first);
    // Cancel ends the pending sign-in and brings the form back; a new sign-in gets a new code.
    await page.click('#cancel-sign-in');
    await badge(page).getByText('Not signed in').waitFor();
    await page.locator('#sign-in-form').waitFor();
    expect((await agent.status()).signIn).toBeUndefined();
    await page.click('button[type=submit]'); // the form kept what was typed
    await badge(page).getByText('Signing in').waitFor();
    const userCode = broker.signIns.latest().userCode;
    expect(userCode).not.toBe(first);
    expect(await code.textContent()).toBe(userCode);
    const verify = page.locator('#verify-link');
    expect(await verify.getAttribute('href')).toBe(`${brokerUrl}/device#code=${userCode}`);
    expect(await verify.getAttribute('target')).toBe('_blank');
    expect(await verify.getAttribute('rel')).toBe('noopener noreferrer');
    await badge(page).getByText('Signing in').waitFor();
    await shot(page, 'sign-in-code');

    broker.signIns.approve();
    await badge(page).getByText('Connected', { exact: true }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#self-name').textContent()).toBe('laptop (laptop.acme.trellis.test)');
    expect(await page.locator('#self-address').textContent()).toMatch(/^100\.64\.0\.\d+$/);
    expect(await page.locator('#self-broker').textContent()).toContain(`${brokerUrl}/ — connected`);
    const rows = page.locator('#peer-rows tr');
    await rows.nth(1).waitFor();
    const peers = await rows.evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(peers.map((p) => p[0]).sort()).toEqual(['build-server', 'nas']);
    const status = await agent.status();
    for (const p of status.peers) {
      const row = peers.find((r) => r[0] === p.name)!;
      expect(row[1]).toBe(p.address);
      expect(row[2]).toBe(p.online ? 'online' : 'offline');
      expect(row[3]).not.toBe('');
    }
    expect(await page.locator('#sign-in').isHidden()).toBe(true);
    await shot(page, 'connected');

    await page.click('#disconnect');
    await badge(page).getByText('Disconnected').waitFor();
    expect((await agent.status()).state).toBe('stopped');
    expect(await page.locator('#connect').isVisible()).toBe(true);
    await shot(page, 'disconnected');
    await page.click('#connect');
    await badge(page).getByText('Connected', { exact: true }).waitFor({ timeout: 20_000 });
    expect((await agent.status()).state).toBe('connected');

    // A reload keeps the session (the token is gone from the address by now).
    await page.reload();
    await badge(page).getByText('Connected', { exact: true }).waitFor();
    expect(pageErrors).toEqual([]);
  });
});
