import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { EXIT_FWMARK } from '../../src/exit/exit-routing';
import { ETH_INDEX, IFACE, laptop, parts, removeStateDirs, routeLines, TUN_INDEX } from './scenario';

afterAll(removeStateDirs);

const plan = (bypass: string[]) => ({ interfaceName: IFACE, fwmark: EXIT_FWMARK, allowLan: true, bypass });
const recorded = (file: string): string[] =>
  (JSON.parse(readFileSync(file, 'utf8')) as { routes: Array<Record<string, unknown>> }).routes
    .map((r) => `${r.prefix} via ${r.nextHop} if ${r.ifIndex} metric ${r.metric}`)
    .sort();
const OTHERS = '203.0.113.10/32 via 192.168.1.1 if 4 metric 117';

/** Which exit routes are ours: the record in the state directory says, not the metric. */
describe('Windows exit routes: the record of what we added', () => {
  it('records every route it adds, and the record follows the routes', async () => {
    const w = laptop();
    const { exit, routesFile } = parts(w);
    await exit.apply(plan(['198.51.100.4', '198.51.100.5']));
    expect(recorded(routesFile)).toEqual(routeLines(w, 117));
    expect(recorded(routesFile)).toHaveLength(6);
    await exit.apply(plan(['198.51.100.5']));
    expect(recorded(routesFile)).toEqual(routeLines(w, 117));
    expect(routeLines(w, 117)).not.toContain('198.51.100.4/32 via 192.168.1.1 if 4 metric 117');
    await exit.remove();
    expect(routeLines(w, 117)).toEqual([]);
    expect(recorded(routesFile)).toEqual([]);
  });

  it("another program's host route of our metric and shape is neither taken over nor removed", async () => {
    const w = laptop();
    w.routes.push({ prefix: '203.0.113.10/32', nextHop: '192.168.1.1', metric: 117, ifIndex: ETH_INDEX });
    const { exit, routesFile } = parts(w);
    // The same route we would add: it carries the traffic alike, so it is not added a second time.
    await exit.apply(plan(['203.0.113.10', '198.51.100.4']));
    expect(recorded(routesFile)).not.toContain(OTHERS);
    expect(recorded(routesFile)).toContain('198.51.100.4/32 via 192.168.1.1 if 4 metric 117');
    await exit.remove();
    expect(routeLines(w, 117)).toEqual([OTHERS]);
  });

  it('records before adding: a refused add leaves the others recorded, and remove takes them', async () => {
    const w = laptop();
    const { exit, routesFile } = parts(w);
    w.failOn = /New-NetRoute .*'198\.51\.100\.5\/32'/;
    await expect(exit.apply(plan(['198.51.100.4', '198.51.100.5']))).rejects.toThrow(
      /parameter is incorrect/,
    );
    // The lines before the refused one ran; all were recorded first.
    expect(recorded(routesFile)).toContain('198.51.100.5/32 via 192.168.1.1 if 4 metric 117');
    expect(routeLines(w, 117)).toContain('198.51.100.4/32 via 192.168.1.1 if 4 metric 117');
    w.failOn = null;
    await exit.remove();
    expect(routeLines(w, 117)).toEqual([]);
  });

  it('a lost record: the half-defaults on our adapter are still ours; the bypasses are left', async () => {
    const w = laptop();
    const { exit, routesFile } = parts(w);
    await exit.apply(plan(['198.51.100.4']));
    rmSync(routesFile);
    await exit.apply(plan([]));
    expect(recorded(routesFile)).toEqual(routeLines(w, 117).filter((r) => r.includes(` if ${TUN_INDEX} `)));
    expect(routeLines(w, 117)).toContain('198.51.100.4/32 via 192.168.1.1 if 4 metric 117');
  });

  it('an unreadable record claims nothing: nothing is removed, and it says so', async () => {
    const w = laptop();
    w.routes.push({ prefix: '203.0.113.10/32', nextHop: '192.168.1.1', metric: 117, ifIndex: ETH_INDEX });
    const logs: string[] = [];
    const { exit, routesFile } = parts(w, logs);
    writeFileSync(routesFile, '{"routes": "not a list"');
    await exit.remove();
    expect(w.calls).toEqual([]);
    expect(routeLines(w, 117)).toEqual([OTHERS]);
    expect(logs.join('')).toMatch(/record of exit routes is unreadable/);
  });

  it('bypasses go by the active default route, not a persistent copy of an old one', async () => {
    const w = laptop();
    const { net, exit } = parts(w);
    expect(routeLines(w).filter((r) => r.startsWith('0.0.0.0/0 '))).toEqual([
      '0.0.0.0/0 via 192.168.1.1 if 4 metric 0',
      '0.0.0.0/0 via 192.168.1.254 if 4 metric 0 (PersistentStore)',
    ]);
    expect((await net.keepOutHosts()).map((k) => k.address)).toEqual(['192.168.1.1', '192.168.1.53']);
    await exit.apply(plan(['198.51.100.4']));
    expect(routeLines(w, 117)).toContain('198.51.100.4/32 via 192.168.1.1 if 4 metric 117');
  });
});
