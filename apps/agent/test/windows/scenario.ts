import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { WindowsExitRouting } from '../../src/exit/windows';
import { EXIT_ROUTES_FILE } from '../../src/exit/windows-route-record';
import { NrptConfigurator } from '../../src/platform/resolver-windows';
import { WindowsNetworkConfigurator } from '../../src/platform/windows';
import { FakeWindows } from './fake-windows';

export const IFACE = 'trellis0';
export const TUN_INDEX = 17;
export const ETH_INDEX = 4;
export const OTHER_VPN_INDEX = 9;

/** A laptop on a LAN (192.168.1.0/24, gateway .1), another VPN routing 172.16.0.0/12, our adapter. */
export function laptop(): FakeWindows {
  const w = new FakeWindows();
  w.addIface('Ethernet', ETH_INDEX, {
    metric: 25,
    dadTransmits: 1,
    addresses: [{ address: '192.168.1.20', prefixLength: 24, origin: 'Dhcp' }],
    dns: ['192.168.1.53', 'fec0:0:0:ffff::1%1'],
  });
  w.addIface('OtherVPN', OTHER_VPN_INDEX, { metric: 1, dns: [] });
  w.addIface(IFACE, TUN_INDEX, {
    metric: 5,
    addresses: [{ address: '169.254.33.7', prefixLength: 16, origin: 'WellKnown' }],
  });
  w.routes.push(
    // A stale persistent-store copy (an old static gateway): Windows does not route by it.
    {
      prefix: '0.0.0.0/0',
      nextHop: '192.168.1.254',
      metric: 0,
      ifIndex: ETH_INDEX,
      store: 'PersistentStore',
    },
    { prefix: '0.0.0.0/0', nextHop: '192.168.1.1', metric: 0, ifIndex: ETH_INDEX },
    { prefix: '192.168.1.0/24', nextHop: '0.0.0.0', metric: 256, ifIndex: ETH_INDEX },
    { prefix: '::/0', nextHop: 'fe80::1', metric: 0, ifIndex: ETH_INDEX },
    { prefix: '172.16.0.0/12', nextHop: '0.0.0.0', metric: 5, ifIndex: OTHER_VPN_INDEX },
  );
  // Another program's rule, which must never be touched.
  w.nrpt.push({ name: '{corp}', namespaces: ['.corp.example'], servers: ['10.1.1.1'], comment: 'Corp VPN' });
  return w;
}

export function capturingLogger(lines: string[]) {
  return pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
}

const tempDirs: string[] = [];

/** A fresh state directory (real, under the OS's temp directory); removeStateDirs() takes them away. */
export function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-windows-'));
  tempDirs.push(dir);
  return dir;
}

export function removeStateDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The parts of WindowsPlatform on one fake; `dir`: the state directory (the exit route record). */
export function parts(w: FakeWindows, logs: string[] = [], dir = stateDir()) {
  const log = capturingLogger(logs);
  return {
    net: new WindowsNetworkConfigurator(w),
    dns: new NrptConfigurator(IFACE, w, log),
    exit: new WindowsExitRouting(w, log, join(dir, EXIT_ROUTES_FILE)),
    routesFile: join(dir, EXIT_ROUTES_FILE),
  };
}

/** Routes as `prefix via nextHop if N metric M`, sorted: for exact comparisons. */
export function routeLines(w: FakeWindows, metric?: number): string[] {
  return w.routes
    .filter((r) => metric === undefined || r.metric === metric)
    .map(
      (r) =>
        `${r.prefix} via ${r.nextHop} if ${r.ifIndex} metric ${r.metric}${r.store ? ` (${r.store})` : ''}`,
    )
    .sort();
}
