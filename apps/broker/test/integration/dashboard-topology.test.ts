import type { PathStateMessage } from '@trellis/proto';
import type { Page } from 'playwright-core';
import { type DashboardHarness, OWNER_PASSWORD, startDashboard } from '../support/dashboard-browser';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(90_000);

const report = (d: TestDevice, paths: PathStateMessage['paths'], full = false) =>
  d.send({ type: 'path-state', ...(full ? { full: true } : {}), paths } satisfies PathStateMessage);

/** An edge (waited for as attached: a horizontal or vertical line has an empty box, which counts as hidden). */
const edge = (page: Page, a: string, b: string) => page.locator(`[data-edge="${[a, b].sort().join(' ')}"]`);

/** The browser's getComputedStyle (run in Chromium; these tests' TypeScript has no DOM types). */
interface Styled {
  getComputedStyle(el: unknown): { strokeDasharray: string; fill: string };
}

/** How the line of an edge is drawn: its dash pattern ('none' for a solid line). */
const dashOf = (page: Page, a: string, b: string) =>
  edge(page, a, b)
    .locator('line')
    .evaluate((el) => (globalThis as unknown as Styled).getComputedStyle(el).strokeDasharray);

/** The built dashboard in Chromium: simulated devices report their paths, the picture follows live. */
describe('the dashboard in Chromium: the live topology', () => {
  let h: DashboardHarness;
  beforeAll(async () => {
    h = await startDashboard({ eventsHeartbeatMs: 1_000 });
  });
  afterAll(() => h?.close());

  async function device(name: string): Promise<TestDevice> {
    const d = h.t.device();
    await d.enroll(h.t.setupKey, { name });
    await d.connect();
    return d;
  }

  it('draws devices and their paths by kind, lists a device’s paths, and follows devices coming and going', async () => {
    const laptop = await device('laptop');
    const server = await device('server');
    const phone = await device('phone');
    const printer = await device('printer');
    await laptop.waitForPeers((p) => [server, phone, printer].every((d) => p.get(d.id)?.online));

    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/topology');
    for (const n of ['laptop', 'server', 'phone', 'printer'])
      await page.locator(`[data-node="${n}"]`).waitFor();

    report(laptop, [{ peerId: server.id, path: 'direct', forMs: 60_000 }], true);
    report(server, [{ peerId: laptop.id, path: 'direct', forMs: 59_000 }], true);
    report(phone, [{ peerId: laptop.id, path: 'relayed', relay: 'relay-eu', forMs: 5_000 }], true);
    report(printer, [{ peerId: server.id, path: 'connecting', forMs: 0 }], true);

    await edge(page, 'laptop', 'server')
      .and(page.locator('[data-kind=direct]'))
      .waitFor({ state: 'attached' });
    await edge(page, 'laptop', 'phone')
      .and(page.locator('[data-kind=relayed]'))
      .waitFor({ state: 'attached' });
    await edge(page, 'printer', 'server')
      .and(page.locator('[data-kind=connecting]'))
      .waitFor({ state: 'attached' });
    // Drawn differently: solid, dashed with the relay's name, dotted.
    expect(await dashOf(page, 'laptop', 'server')).toBe('none');
    expect(await dashOf(page, 'laptop', 'phone')).toBe('10px, 6px');
    expect(await dashOf(page, 'printer', 'server')).toBe('1px, 7px');
    expect(await edge(page, 'laptop', 'phone').textContent()).toContain('relay-eu');
    expect(await page.getByTestId('topology-summary').textContent()).toContain(
      '1 direct, 1 relayed, 1 connecting',
    );

    // The path to each peer of one device.
    await page.locator('[data-node="laptop"]').click();
    const paths = page.getByTestId('peer-paths');
    await paths.getByText('Paths of laptop').waitFor();
    expect(await paths.locator('tr[data-peer="server"] td').nth(1).textContent()).toBe('direct');
    expect(await paths.locator('tr[data-peer="phone"] td').nth(1).textContent()).toBe(
      'relayed through relay-eu',
    );
    expect(await paths.locator('tr[data-peer="printer"]').count()).toBe(0);
    await h.screenshot(page, 'topology');

    // A device comes: its node appears, then its path.
    const tablet = await device('tablet');
    await page.locator('[data-node="tablet"][data-online="true"]').waitFor();
    report(tablet, [{ peerId: laptop.id, path: 'direct', forMs: 0 }], true);
    await edge(page, 'laptop', 'tablet')
      .and(page.locator('[data-kind=direct]'))
      .waitFor({ state: 'attached' });
    await paths.locator('tr[data-peer="tablet"]').waitFor();

    // A path changes kind: the relayed one goes direct.
    report(phone, [{ peerId: laptop.id, path: 'direct', forMs: 0 }]);
    await edge(page, 'laptop', 'phone')
      .and(page.locator('[data-kind=direct]'))
      .waitFor({ state: 'attached' });

    // A device goes away: greyed, and its paths are gone from the picture and the list.
    phone.close();
    await page.locator('[data-node="phone"][data-online="false"]').waitFor();
    await edge(page, 'laptop', 'phone').waitFor({ state: 'detached' });
    await paths.locator('tr[data-peer="phone"]').waitFor({ state: 'detached' });
    expect(
      await page
        .locator('[data-node="phone"] circle')
        .evaluate((el) => (globalThis as unknown as Styled).getComputedStyle(el).fill),
    ).toBe('rgb(196, 200, 208)');
    await h.screenshot(page, 'topology-device-gone');
    for (const d of [laptop, server, printer, tablet]) d.close();
  });

  it('the devices page links each device to its paths in the topology', async () => {
    const page = await h.signedIn(h.ownerEmail, OWNER_PASSWORD, '/devices');
    await page.getByRole('link', { name: 'paths of laptop' }).click();
    await page.getByTestId('peer-paths').getByText('Paths of laptop').waitFor();
    expect(new URL(page.url()).pathname).toBe('/topology');
  });
});
