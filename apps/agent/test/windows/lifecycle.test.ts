import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT_FWMARK } from '../../src/exit/exit-routing';
import { NRPT_COMMENT, selectWindowsResolver } from '../../src/platform/resolver-windows';
import { expectGolden } from './golden';
import {
  capturingLogger,
  ETH_INDEX,
  IFACE,
  laptop,
  OTHER_VPN_INDEX,
  parts,
  removeStateDirs,
  routeLines,
  stateDir,
  TUN_INDEX,
} from './scenario';

const DOMAIN = 'acme.ts.example';
afterAll(removeStateDirs);

const exitPlan = (bypass: string[], allowLan = true) => ({
  interfaceName: IFACE,
  fwmark: EXIT_FWMARK,
  allowLan,
  bypass,
});

/** The scenarios the Linux backend passes, against the recorded Windows fake and golden scripts. */
describe('Windows: up, netmap change, roam, exit node, down', () => {
  it('up: the /32 address, the overlay route, the subnet routes and the NRPT rule; again: nothing', async () => {
    const w = laptop();
    const { net, dns } = parts(w);
    await net.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await net.setRoutes(IFACE, ['192.168.50.0/24', '172.16.0.0/12']);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    expectGolden('up.txt', w.transcript());

    const tun = w.iface(IFACE)!;
    expect(tun.addresses.map((a) => `${a.address}/${a.prefixLength}`)).toEqual([
      '169.254.33.7/16',
      '100.64.0.7/32',
    ]);
    expect(tun.dadTransmits).toBe(0);
    expect(tun.suffix).toBe(DOMAIN);
    expect(tun.register).toBe(false);
    // 172.16.0.0/12 is the other VPN's: left to it, not doubled into ours.
    expect(routeLines(w).filter((r) => r.includes(`if ${TUN_INDEX} `))).toEqual([
      '100.64.0.0/10 via 0.0.0.0 if 17 metric 0',
      '192.168.50.0/24 via 0.0.0.0 if 17 metric 116',
    ]);
    expect(w.nrpt.filter((r) => r.comment === NRPT_COMMENT)).toEqual([
      {
        name: '{rule-1}',
        namespaces: [`.${DOMAIN}`, DOMAIN],
        servers: ['100.64.0.7'],
        comment: NRPT_COMMENT,
      },
    ]);

    const changes = w.changes().length;
    await net.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await net.setRoutes(IFACE, ['192.168.50.0/24', '172.16.0.0/12']);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    expect(w.changes().length).toBe(changes);
  });

  it('netmap change: routes exactly the new prefixes, and a new address replaces the old one', async () => {
    const w = laptop();
    const { net, dns } = parts(w);
    await net.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await net.setRoutes(IFACE, ['192.168.50.0/24', '10.20.0.0/16']);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    w.calls.length = 0;

    await net.setRoutes(IFACE, ['10.20.0.0/16', '10.9.0.0/16']);
    await net.apply(IFACE, '100.64.0.8', '100.64.0.0/10');
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.8', domain: DOMAIN });
    expectGolden('netmap-change.txt', w.transcript());

    expect(routeLines(w, 116)).toEqual([
      '10.20.0.0/16 via 0.0.0.0 if 17 metric 116',
      '10.9.0.0/16 via 0.0.0.0 if 17 metric 116',
    ]);
    expect(w.iface(IFACE)!.addresses.map((a) => a.address)).toEqual(['169.254.33.7', '100.64.0.8']);
    expect(w.nrpt.filter((r) => r.comment === NRPT_COMMENT).map((r) => r.servers)).toEqual([['100.64.0.8']]);
  });

  it('roam: the keep-out hosts follow the new network, and so do the bypass routes', async () => {
    const w = laptop();
    const { net, exit } = parts(w);
    expect(await net.keepOutHosts()).toEqual([
      { address: '192.168.1.1', what: 'the default gateway' },
      { address: '192.168.1.53', what: 'the DNS server' },
    ]);
    await exit.apply(exitPlan(['203.0.113.10']));
    w.calls.length = 0;

    // Ethernet unplugged, Wi-Fi joined.
    w.removeIface('Ethernet');
    w.addIface('Wi-Fi', 12, { metric: 35, dns: ['10.0.0.1'] });
    w.routes.push({ prefix: '0.0.0.0/0', nextHop: '10.0.0.1', metric: 0, ifIndex: 12 });
    // The Wi-Fi's gateway is its DNS server too: named once.
    expect(await net.keepOutHosts()).toEqual([{ address: '10.0.0.1', what: 'the default gateway' }]);
    await exit.apply(exitPlan(['203.0.113.10']));
    expectGolden('roam.txt', w.transcript());
    expect(routeLines(w, 117)).toEqual([
      '0.0.0.0/1 via 0.0.0.0 if 17 metric 117',
      '128.0.0.0/1 via 0.0.0.0 if 17 metric 117',
      '203.0.113.10/32 via 10.0.0.1 if 12 metric 117',
      '8000::/1 via :: if 17 metric 117',
      '::/1 via :: if 17 metric 117',
    ]);
  });

  it('exit node: half-default routes, bypasses by the physical gateway, `.` to the stub; then off', async () => {
    const w = laptop();
    const logs: string[] = [];
    const { net, dns, exit } = parts(w, logs);
    await net.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    w.calls.length = 0;

    await exit.apply(exitPlan(['203.0.113.10', '2001:db8::5', '203.0.113.10', 'relay.example'], false));
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN, defaultRoute: true });
    expectGolden('exit-node.txt', w.transcript());
    expect(routeLines(w, 117)).toEqual([
      '0.0.0.0/1 via 0.0.0.0 if 17 metric 117',
      '128.0.0.0/1 via 0.0.0.0 if 17 metric 117',
      '2001:db8::5/128 via fe80::1 if 4 metric 117',
      '203.0.113.10/32 via 192.168.1.1 if 4 metric 117',
      '8000::/1 via :: if 17 metric 117',
      '::/1 via :: if 17 metric 117',
    ]);
    expect(w.nrpt.filter((r) => r.comment === NRPT_COMMENT).map((r) => r.namespaces)).toEqual([
      [`.${DOMAIN}`, DOMAIN],
      ['.'],
    ]);
    expect(logs.join('')).toMatch(/not an IP address: no direct path kept for it/);
    expect(logs.join('')).toMatch(/attached LAN stays reachable/);

    const changes = w.changes().length;
    await exit.apply(exitPlan(['203.0.113.10', '2001:db8::5'], false));
    expect(w.changes().length).toBe(changes);

    w.calls.length = 0;
    await exit.remove();
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN });
    expectGolden('exit-node-off.txt', w.transcript());
    expect(routeLines(w, 117)).toEqual([]);
    expect(w.nrpt.filter((r) => r.comment === NRPT_COMMENT).map((r) => r.namespaces)).toEqual([
      [`.${DOMAIN}`, DOMAIN],
    ]);
  });

  it('exit node without the adapter: bypasses kept, and it says traffic is not routed', async () => {
    const w = laptop();
    w.removeIface(IFACE);
    const { exit } = parts(w);
    await expect(exit.apply(exitPlan(['203.0.113.10']))).rejects.toThrow(/trellis0 is missing/);
    expect(routeLines(w, 117)).toEqual(['203.0.113.10/32 via 192.168.1.1 if 4 metric 117']);
  });

  it('down: takes away exactly what up and the exit node added', async () => {
    const w = laptop();
    const { net, dns, exit } = parts(w);
    const before = routeLines(w);
    await net.apply(IFACE, '100.64.0.7', '100.64.0.0/10');
    await net.setRoutes(IFACE, ['192.168.50.0/24']);
    await dns.apply({ interfaceName: IFACE, server: '100.64.0.7', domain: DOMAIN, defaultRoute: true });
    await exit.apply(exitPlan(['203.0.113.10']));
    w.calls.length = 0;

    await exit.remove();
    await dns.restore(IFACE);
    await net.remove(IFACE, '100.64.0.0/10');
    expectGolden('down.txt', w.transcript());
    expect(routeLines(w)).toEqual(before);
    expect(w.iface(IFACE)!.addresses.map((a) => a.address)).toEqual(['169.254.33.7']);
    expect(w.iface(IFACE)!.suffix).toBe('');
    expect(w.nrpt.map((r) => r.name)).toEqual(['{corp}']);

    // Again, and with the adapter gone: nothing fails.
    w.removeIface(IFACE);
    await exit.remove();
    await dns.restore(IFACE);
    await net.remove(IFACE, '100.64.0.0/10');
  });
});

describe('Windows: crash recovery', () => {
  const NEW_TUN_INDEX = 21;

  /**
   * What a killed agent leaves: wireguard-nt removed its adapter, and the adapter's routes and
   * addresses went with it. Left: NRPT rules, the bypass host routes on the physical adapter, and
   * the record of the exit routes it added. The new run's adapter is a fresh one.
   */
  function leftovers() {
    const w = laptop();
    const dir = stateDir();
    w.removeIface(IFACE);
    w.routes.push(
      { prefix: '198.51.100.4/32', nextHop: '192.168.1.1', metric: 117, ifIndex: ETH_INDEX },
      // Other programs' routes with our metrics and shapes: never recorded by us, so untouched.
      { prefix: '203.0.113.99/32', nextHop: '192.168.1.1', metric: 117, ifIndex: ETH_INDEX },
      { prefix: '10.77.0.0/16', nextHop: '0.0.0.0', metric: 116, ifIndex: OTHER_VPN_INDEX },
    );
    w.nrpt.push(
      { name: '{old-1}', namespaces: [`.${DOMAIN}`, DOMAIN], servers: ['100.64.0.7'], comment: NRPT_COMMENT },
      { name: '{old-2}', namespaces: ['.'], servers: ['100.64.0.7'], comment: NRPT_COMMENT },
    );
    const recorded = [
      { prefix: '0.0.0.0/1', nextHop: '0.0.0.0', metric: 117, ifIndex: TUN_INDEX },
      { prefix: '198.51.100.4/32', nextHop: '192.168.1.1', metric: 117, ifIndex: ETH_INDEX },
    ];
    writeFileSync(parts(w, [], dir).routesFile, JSON.stringify({ routes: recorded }));
    return { w, dir };
  }

  it('a new run removes what the record and the marker name, and nothing else', async () => {
    const { w, dir } = leftovers();
    w.addIface(IFACE, NEW_TUN_INDEX, { metric: 5 });
    const { net, exit, routesFile } = parts(w, [], dir);
    const choice = selectWindowsResolver('auto', IFACE, w, capturingLogger([]));
    await choice.recover(IFACE);
    await exit.remove();
    await net.setRoutes(IFACE, []);
    expectGolden('crash-recovery.txt', w.transcript());
    expect(w.nrpt.map((r) => r.name)).toEqual(['{corp}']);
    expect(routeLines(w).filter((r) => / metric 11[67]$/.test(r))).toEqual([
      '10.77.0.0/16 via 0.0.0.0 if 9 metric 116',
      '203.0.113.99/32 via 192.168.1.1 if 4 metric 117',
    ]);
    expect(JSON.parse(readFileSync(routesFile, 'utf8'))).toEqual({ routes: [] });

    // Nothing recorded any more: a second recovery reads nothing and changes nothing.
    w.calls.length = 0;
    await exit.remove();
    expect(w.calls).toEqual([]);
  });

  it('before the new adapter exists the NRPT rules and the recorded bypass still go', async () => {
    const { w, dir } = leftovers();
    const choice = selectWindowsResolver('stub', IFACE, w, capturingLogger([]));
    expect(choice.resolver).toBeNull();
    await choice.recover(IFACE);
    expect(w.nrpt.map((r) => r.name)).toEqual(['{corp}']);
    await parts(w, [], dir).exit.remove();
    expect(routeLines(w, 117)).toEqual(['203.0.113.99/32 via 192.168.1.1 if 4 metric 117']);
  });
});
