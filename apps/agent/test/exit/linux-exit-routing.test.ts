import pino from 'pino';
import { EXIT_FWMARK, type ExitRoutingPlan } from '../../src/exit/exit-routing';
import { canonicalAddress, LinuxExitRouting } from '../../src/exit/linux';
import { FakeIp } from '../helpers/fake-ip';

const logger = pino({ level: 'silent' });
const PLAN: ExitRoutingPlan = {
  interfaceName: 'trellis0',
  fwmark: EXIT_FWMARK,
  allowLan: true,
  bypass: ['198.51.100.7', '2001:db8::7'],
};

/**
 * A fresh apply, in order: IPv4 whole before IPv6; in each, the table's last resort, then the
 * rules from the catch-all to the most specific (a failure half-way leaves traffic in the tunnel).
 */
const FRESH = [
  'ip route add unreachable default metric 2147483647 table 29810',
  'ip route add default dev trellis0 metric 0 table 29810',
  'ip rule add priority 5320 not fwmark 0x7472 table 29810',
  'ip rule add priority 5310 table main suppress_prefixlength 0',
  'ip rule add priority 5300 to 198.51.100.7/32 table main',
  'ip -6 route add unreachable default metric 2147483647 table 29810',
  'ip -6 rule add priority 5320 not fwmark 0x7472 table 29810',
  'ip -6 rule add priority 5310 table main suppress_prefixlength 0',
  'ip -6 rule add priority 5300 to 2001:db8::7/128 table main',
  'ip -6 rule add priority 5300 to fe80::/10 table main',
];

describe('LinuxExitRouting', () => {
  it('adds the table and rules, the catch-all before the bypasses, and a second apply only reads', async () => {
    const ip = new FakeIp();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    expect(ip.changes).toEqual(FRESH);
    const before = ip.calls.length;
    await routing.apply({ ...PLAN, bypass: [...PLAN.bypass].reverse() });
    expect(ip.calls.slice(before).every((c) => c.includes(' -j '))).toBe(true);
    expect(ip.calls.length - before).toBe(4); // rules and routes of both families, read once each
  });

  it('without allowLan has no suppress rule, so LAN routes of the main table do not win', async () => {
    const ip = new FakeIp();
    await new LinuxExitRouting(ip, logger).apply({ ...PLAN, allowLan: false });
    expect(ip.changes.filter((c) => c.includes('suppress_prefixlength'))).toEqual([]);
    expect(ip.changes).toContain('ip rule add priority 5320 not fwmark 0x7472 table 29810');
  });

  it('turning allowLan off later deletes only the suppress rules', async () => {
    const ip = new FakeIp();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    const before = ip.changes.length;
    await routing.apply({ ...PLAN, allowLan: false });
    expect(ip.changes.slice(before)).toEqual([
      'ip rule del priority 5310 table main suppress_prefixlength 0',
      'ip -6 rule del priority 5310 table main suppress_prefixlength 0',
    ]);
  });

  it('a bypass change adds the new address before deleting the old one', async () => {
    const ip = new FakeIp();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    const before = ip.changes.length;
    await routing.apply({ ...PLAN, bypass: ['203.0.113.9', '2001:db8::7'] });
    expect(ip.changes.slice(before)).toEqual([
      'ip rule add priority 5300 to 203.0.113.9/32 table main',
      'ip rule del priority 5300 to 198.51.100.7/32 table main',
    ]);
  });

  it('a new interface name gets the default route before the old one goes', async () => {
    const ip = new FakeIp();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    const before = ip.changes.length;
    await routing.apply({ ...PLAN, interfaceName: 'trellis1' });
    expect(ip.changes.slice(before)).toEqual([
      'ip route add default dev trellis1 metric 0 table 29810',
      'ip route del default dev trellis0 metric 0 table 29810',
    ]);
  });

  it('leaves out what is not an IP address, and writes IPv6 as ip prints it', async () => {
    const ip = new FakeIp();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply({ ...PLAN, bypass: ['broker.example', '1.2.3.4 table 5', '2001:DB8:0::7'] });
    const bypass = ip.changes.filter((c) => c.includes('priority 5300'));
    expect(bypass).toEqual([
      'ip -6 rule add priority 5300 to 2001:db8::7/128 table main',
      'ip -6 rule add priority 5300 to fe80::/10 table main',
    ]);
    expect(canonicalAddress('fe80::1%eth0')).toBeNull();
  });

  it('with the mesh interface missing, installs everything else and then reports it', async () => {
    const ip = new FakeIp();
    ip.failOnce.add('ip route add default dev trellis0 metric 0 table 29810');
    await expect(new LinuxExitRouting(ip, logger).apply(PLAN)).rejects.toThrow(/Operation not permitted/);
    expect(ip.changes.filter((c) => !c.includes('dev trellis0'))).toEqual(
      FRESH.filter((c) => !c.includes('dev trellis0')),
    );
  });

  it('an IPv6 failure leaves IPv4 closed: its last resort and tunnel rule are in before IPv6 is touched', async () => {
    const ip = new FakeIp();
    ip.failOnce.add('ip -6 route add unreachable default metric 2147483647 table 29810');
    await expect(new LinuxExitRouting(ip, logger).apply(PLAN)).rejects.toThrow(/Operation not permitted/);
    expect(ip.changes.filter((c) => !c.startsWith('ip -6'))).toEqual(
      FRESH.filter((c) => !c.startsWith('ip -6')),
    );
    expect(ip.rules[6].some((r) => r.table === '29810')).toBe(false);
  });

  it('on a host without IPv6 routes IPv4 alone, and removes it again', async () => {
    const ip = new FakeIp();
    ip.noIpv6 = true;
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    expect(ip.changes.filter((c) => !c.startsWith('ip -6'))).toEqual(
      FRESH.filter((c) => !c.startsWith('ip -6')),
    );
    await routing.remove();
    expect(ip.routes[4]).toEqual([]);
    expect(ip.rules[4].map((r) => r.priority)).toEqual([0, 32766]);
  });

  it('refuses an interface name that could be more than one argument', async () => {
    const ip = new FakeIp();
    await expect(
      new LinuxExitRouting(ip, logger).apply({ ...PLAN, interfaceName: 'eth0 table 5' }),
    ).rejects.toThrow(/refusing/);
    expect(ip.calls).toEqual([]);
  });

  it('remove takes away exactly what apply added, the catch-all first, and leaves others alone', async () => {
    const ip = new FakeIp();
    ip.rules[4].push({ priority: 5210, src: 'all', fwmark: '0x80000/0xff0000', table: 'main' });
    ip.rules[4].push({ priority: 5300, src: 'all', iif: 'eth1', table: 'main' });
    const snapshot = () => [...ip.rules[4], ...ip.rules[6]].map((r) => JSON.stringify(r)).sort();
    const untouched = snapshot();
    const routing = new LinuxExitRouting(ip, logger);
    await routing.apply(PLAN);
    const before = ip.changes.length;
    await routing.remove();
    const removed = ip.changes.slice(before);
    expect(removed[0]).toBe('ip rule del priority 5320 not fwmark 0x7472 table 29810');
    expect(removed).toHaveLength(FRESH.length);
    expect(snapshot()).toEqual(untouched);
    expect(ip.routes).toEqual({ 4: [], 6: [] });
    const after = ip.changes.length;
    await routing.remove();
    expect(ip.changes.length).toBe(after); // nothing left: safe to call again
  });
});
