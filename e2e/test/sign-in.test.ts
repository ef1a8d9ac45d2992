import { createHash, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import {
  AgentRunner,
  BrokerRunner,
  type Host,
  Lab,
  type LabProcess,
  RoutedRouter,
  type TrellisBuild,
  trellisBuild,
  waitFor,
} from '../src';
import { cleanEnv } from '../src/trellis/paths';
import { labIt, requireRoot } from './support/lab-test';

/** Debian's chromium (apt), driven by playwright-core: nothing is downloaded. */
const CHROMIUM = '/usr/bin/chromium';
const OWNER = { email: 'admin@trellis.local', password: 'dashboard-test-password' };

/** Chromium's pin for exactly this certificate (its public key's SHA-256): no check is turned off. */
function spkiPin(certFile: string): string {
  const key = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}

/**
 * Sign in once (issue 13), with nothing simulated: a lab device runs `trellis up --broker URL`
 * without a setup key, the owner signs in to the dashboard in Chromium, opens the page the agent
 * printed, checks the device and approves it; the agent enrolls and connects, and the device shows
 * in the dashboard's list. Screenshots go to the lab's run directory (artifacts/).
 * Then the owner makes a setup key in the dashboard that enrolls a second device, renames it, removes the first
 * in the dashboard and it leaves the second's WireGuard within 2 s; a member sees no admin page and
 * none of the owner's devices.
 *  internet: broker brk (Chromium runs in its namespace)   site s (routed): laptop, peer
 */
const MEMBER = { email: 'member@default.test', password: 'member-test-password' };
describe('sign in once: a lab device approved in the dashboard (real broker, agent and Chromium)', () => {
  let build: TrellisBuild;
  let lab: Lab | undefined;
  let brokerHost: Host;
  let broker: BrokerRunner;
  let agent: AgentRunner;
  let peer: AgentRunner;
  let browser: Browser | undefined;
  let artifacts: string;
  const L = () => lab;

  beforeAll(async () => {
    requireRoot();
    build = trellisBuild();
    lab = await Lab.create();
    brokerHost = await lab.addHost('brk', '198.51.100.10');
    const site = await lab.addSite('s', new RoutedRouter(), ['laptop', 'peer']);
    broker = new BrokerRunner(lab, brokerHost, build);
    agent = new AgentRunner(lab, site.device('laptop'), 51820, build);
    peer = new AgentRunner(lab, site.device('peer'), 51820, build);
    artifacts = join(lab.runDir, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await lab?.destroy();
    expect(lab?.leftovers() ?? []).toEqual([]);
  }, 60_000);

  /** Chromium in the broker host's namespace, where the lab's addresses are reachable. */
  async function launchBrowser(): Promise<Browser> {
    const wrapper = join(lab!.runDir, 'chromium-in-lab');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${brokerHost.ns.name} ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    return chromium.launch({
      executablePath: wrapper,
      // Root cannot use Chromium's sandbox; the broker's self-signed certificate is pinned.
      args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spkiPin(broker.certFile)}`],
    });
  }

  labIt(
    L,
    '`trellis up --broker URL` prints a code; the owner approves it in the dashboard; the device enrolls, connects and is listed',
    async () => {
      await broker.start();
      await broker.admin([
        ...['accounts', 'reset-owner', '--data-dir', broker.dataDir, '--account', 'default'],
        ...['--password', OWNER.password],
      ]);
      await agent.start();
      const up: LabProcess = agent.device.ns.spawn(
        'node',
        [
          ...[build.agentCli, '--state-dir', agent.stateDir, 'up', '--broker', broker.url],
          ...['--ca-file', broker.certFile, '--name', 'laptop', '--no-qr'],
        ],
        { env: cleanEnv(), logName: 'trellis-up-laptop' },
      );
      const code = (await up.waitForLine(/^\s+code\s+([A-Z]{4}-[A-Z]{4})$/, 60_000))[1]!;
      const page = (await up.waitForLine(/^or open (\S+) \(code filled in\)\.$/, 10_000))[1]!;
      expect(page).toBe(`${broker.url}/device#code=${code}`);
      expect((await agent.status()).state).toBe('signing-in');

      browser = await launchBrowser();
      const tab = await browser.newPage();
      await tab.goto(page);
      // Not signed in yet: the sign-in form, then back on the device page with the code.
      await tab.fill('input[name=email]', OWNER.email);
      await tab.fill('input[name=password]', OWNER.password);
      await tab.click('button[type=submit]');
      await tab.getByText('This device asks to join your mesh').waitFor({ timeout: 15_000 });
      expect(await tab.textContent('dl')).toContain(code);
      expect(await tab.textContent('dl')).toContain('laptop');
      await tab.screenshot({ path: join(artifacts, 'device-approval.png') });
      await tab.getByRole('button', { name: 'Approve' }).click();
      await tab.getByText('Approved: laptop is joining your mesh.').waitFor({ timeout: 15_000 });

      await up.exited;
      expect(up.lines.join('\n')).toMatch(/up: laptop \(100\.\d+\.\d+\.\d+\), connected to/);
      const self = (await agent.waitConnected()).self;
      expect(self.name).toBe('laptop');

      await tab.getByRole('button', { name: 'Devices' }).click();
      const row = tab.locator('tr[data-device="laptop"]');
      await row.waitFor({ timeout: 15_000 });
      await waitFor(async () => (await row.textContent())?.includes('online') ?? false, {
        timeoutMs: 15_000,
        what: 'laptop online in the device list',
      });
      expect(await row.textContent()).toContain(self.address);
      expect(await row.textContent()).toContain(OWNER.email);
      await tab.screenshot({ path: join(artifacts, 'devices.png') });
      process.stdout.write(`screenshots: ${artifacts}\n`);

      // A setup key made in the dashboard enrolls the second device; the two become peers.
      await tab.getByRole('button', { name: 'Setup keys' }).click();
      await tab.fill('input[name=name]', 'lab-peer');
      await tab.check('input[name=reusable]');
      await tab.fill('input[name=expiresHours]', '1');
      await tab.getByRole('button', { name: 'Create key' }).click();
      const key = (await tab.getByTestId('new-setup-key').textContent())!.trim();
      expect(key).toMatch(/^tskey_/);
      await tab.locator('tr[data-setup-key="lab-peer"]').waitFor();
      // The device list is live: the new device shows up online in the open page by itself.
      await tab.getByRole('button', { name: 'Devices' }).click();
      await row.waitFor();
      await peer.start();
      await peer.up({ broker: broker.url, setupKey: key, caFile: broker.certFile });
      await peer.waitConnected();
      const connectedAt = Date.now();
      const peerRow = tab.locator('tr[data-device="peer"]');
      await waitFor(async () => (await peerRow.textContent().catch(() => ''))?.includes('online') ?? false, {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: 'peer online in the open device list',
      });
      process.stdout.write(
        `peer online in the open dashboard ${Date.now() - connectedAt} ms after its agent said so\n`,
      );
      const laptopKey = (await agent.status()).interface.publicKey!;
      const hasLaptop = async () => (await peer.wg()).peers.some((p) => p.publicKey === laptopKey);
      await waitFor(hasLaptop, { timeoutMs: 30_000, what: 'laptop in peer’s WireGuard' });

      // The topology: both devices, and the path traffic between them brings up, drawn live.
      await tab.getByRole('button', { name: 'Topology' }).click();
      await tab.locator('[data-node="laptop"][data-online="true"]').waitFor({ timeout: 15_000 });
      await tab.locator('[data-node="peer"][data-online="true"]').waitFor({ timeout: 15_000 });
      await waitFor(() => peer.device.ns.ping(self.address, { count: 1, waitS: 1 }), {
        timeoutMs: 30_000,
        what: 'peer → laptop ping',
      });
      const labEdge = tab.locator('[data-edge="laptop peer"]');
      await labEdge.waitFor({ state: 'attached', timeout: 15_000 });
      process.stdout.write(`topology: laptop – peer ${await labEdge.getAttribute('data-kind')}\n`);
      await tab.locator('[data-node="laptop"]').click();
      await tab.getByTestId('peer-paths').locator('tr[data-peer="peer"]').waitFor();
      await tab.screenshot({ path: join(artifacts, 'topology.png') });
      await tab.getByRole('button', { name: 'Devices' }).click();

      // Renamed in the dashboard: the device hears its new name (and DNS name) from the broker.
      await peerRow.getByRole('button', { name: 'Edit' }).click();
      const editor = tab.locator('tr[data-editing="peer"]');
      await editor.locator('input[name=name]').fill('peer-2');
      await editor.getByRole('button', { name: 'Save' }).click();
      await tab.locator('tr[data-device="peer-2"]').waitFor({ timeout: 15_000 });
      await waitFor(async () => (await peer.status()).self?.name === 'peer-2', {
        timeoutMs: 15_000,
        what: 'the peer renamed peer-2',
      });

      // Removed in the dashboard: gone from the peer's WireGuard within 2 s.
      await row.getByRole('button', { name: 'Remove' }).click();
      const removedAt = Date.now();
      await row.getByRole('button', { name: 'Remove laptop for good' }).click();
      await waitFor(async () => !(await hasLaptop()), {
        timeoutMs: 10_000,
        intervalMs: 50,
        what: 'laptop gone',
      });
      const goneMs = Date.now() - removedAt;
      process.stdout.write(`removed in the dashboard: gone from the peer's WireGuard after ${goneMs} ms\n`);
      expect(goneMs).toBeLessThan(2_000);
      await tab.locator('tr[data-device="laptop"]').waitFor({ state: 'detached', timeout: 10_000 });

      // A member: no admin page, none of the owner's devices.
      await broker.admin([
        ...['users', 'create', '--data-dir', broker.dataDir, '--account', 'default'],
        ...['--email', MEMBER.email, '--role', 'member', '--password', MEMBER.password],
      ]);
      const memberTab = await (await browser.newContext()).newPage();
      await memberTab.goto(`${broker.url}/setup-keys`);
      await memberTab.fill('input[name=email]', MEMBER.email);
      await memberTab.fill('input[name=password]', MEMBER.password);
      await memberTab.click('button[type=submit]');
      await memberTab.getByText('No devices yet').waitFor({ timeout: 15_000 });
      expect(await memberTab.getByRole('button', { name: 'Setup keys' }).count()).toBe(0);
      expect(await memberTab.locator('tr[data-device]').count()).toBe(0);
    },
    240_000,
  );
});
