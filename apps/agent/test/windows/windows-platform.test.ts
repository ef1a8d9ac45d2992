import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_FWMARK } from '../../src/exit/exit-routing';
import { EXIT_ROUTES_FILE } from '../../src/exit/windows-route-record';
import { SID_ADMINISTRATORS, SID_SYSTEM } from '../../src/ipc/pipe-auth-windows';
import type { OsPlatformOptions } from '../../src/platform/os-platform';
import { NRPT_COMMENT } from '../../src/platform/resolver-windows';
import { WindowsPlatform } from '../../src/platform/windows-platform';
import type { FakeWindows } from './fake-windows';
import { expectGolden } from './golden';
import { capturingLogger, IFACE, laptop, removeStateDirs, routeLines, stateDir } from './scenario';

// WireGuard is wireguard-nt: nothing here may load koffi (or through it wireguard.dll).
jest.mock('koffi', () => {
  throw new Error('koffi must not be loaded by these tests');
});

afterAll(removeStateDirs);

const DOMAIN = 'acme.ts.example';

function options(w: FakeWindows, dir: string, extra: Partial<OsPlatformOptions> = {}): OsPlatformOptions {
  return {
    interfaceName: IFACE,
    stateDir: dir,
    wireguard: 'auto',
    dns: 'auto',
    resolvConf: '',
    runner: w,
    logger: capturingLogger([]),
    ...extra,
  };
}

describe('WindowsPlatform: a run through OsPlatform on the recorded Windows fake', () => {
  it('locks the state directory, brings the mesh up, uses an exit node, and takes it all down', async () => {
    const w = laptop();
    const dir = stateDir();
    w.acls.add(dir, SID_SYSTEM);
    const routesBefore = routeLines(w);
    const p = new WindowsPlatform(options(w, dir));

    await p.prepareStateDir();
    expect(w.acls.dirs.get(dir)?.owner).toBe(SID_ADMINISTRATORS);
    expect(w.acls.sids(dir)).toEqual([SID_SYSTEM, SID_ADMINISTRATORS].sort());

    const backend = await p.wireguard();
    expect(backend.kind).toBe('wireguard-nt');
    expect(backend.interfaceName).toBe(p.interfaceOf(IFACE));
    const dns = (await p.resolver()).resolver!;
    expect(dns.kind).toBe('nrpt');

    // Up.
    await p.network.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await p.network.setRoutes(IFACE, ['192.168.50.0/24']);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    expect(w.iface(IFACE)!.addresses.map((a) => a.address)).toEqual(['169.254.33.7', '100.64.0.7']);
    expect(routeLines(w, 116)).toEqual(['192.168.50.0/24 via 0.0.0.0 if 17 metric 116']);

    // Exit node: its routes recorded in the state directory.
    await p.exitRouting.apply({
      interfaceName: IFACE,
      fwmark: EXIT_FWMARK,
      allowLan: true,
      bypass: ['203.0.113.10'],
    });
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN, defaultRoute: true });
    const exitRoutes = routeLines(w, 117);
    expect(exitRoutes).toContain('203.0.113.10/32 via 192.168.1.1 if 4 metric 117');
    expect(exitRoutes).toHaveLength(5);
    const record = JSON.parse(readFileSync(join(dir, EXIT_ROUTES_FILE), 'utf8')) as { routes: unknown[] };
    expect(record.routes).toHaveLength(5);
    expect(w.nrpt.filter((r) => r.comment === NRPT_COMMENT).map((r) => r.namespaces)).toEqual([
      [`.${DOMAIN}`, DOMAIN],
      ['.'],
    ]);

    // Down, as the daemon does it.
    await p.exitRouting.remove();
    await dns.restore(IFACE);
    await p.network.remove(IFACE, '100.64.0.0/10');
    expect(routeLines(w)).toEqual(routesBefore);
    expect(w.iface(IFACE)!.addresses.map((a) => a.address)).toEqual(['169.254.33.7']);
    expect(w.nrpt.map((r) => r.name)).toEqual(['{corp}']);
    expectGolden('platform-scenario.txt', w.transcript().split(dir).join('C:\\ProgramData\\Trellis'));
  });

  it('refuses the Linux-only choices', async () => {
    const w = laptop();
    const dir = stateDir();
    await expect(new WindowsPlatform(options(w, dir, { dns: 'resolved' })).resolver()).rejects.toThrow(
      /for Linux/,
    );
    await expect(
      new WindowsPlatform(options(w, dir, { wireguard: 'userspace' })).wireguard(),
    ).rejects.toThrow(/userspace is not available on Windows/);
    expect((await new WindowsPlatform(options(w, dir, { dns: 'off' })).resolver()).resolver).toBeNull();
  });
});
