import pino from 'pino';
import { DarwinExitRouting } from '../../src/exit/darwin';
import type { ExitRoutingPlan } from '../../src/exit/exit-routing';
import { UtunName } from '../../src/platform/darwin-interface';
import { FakeDarwin, route } from './fake-darwin';
import { expectGolden, lines } from './golden';

const logger = pino({ level: 'silent' });
const plan: ExitRoutingPlan = {
  interfaceName: 'trellis0',
  fwmark: 0x7472,
  allowLan: true,
  // A broker, a relay (IPv6) and a name that is no address.
  bypass: ['198.51.100.7', '2001:db8::9', 'relay.example'],
};

function setup() {
  const fake = new FakeDarwin();
  fake.addUtun('utun4');
  const name = new UtunName('trellis0');
  name.set('utun4');
  // A direct peer on the internet, one on the LAN, a relayed one through the local TCP proxy.
  let endpoints = ['203.0.113.5:41641', '192.168.1.20:41641', '127.0.0.1:5000', '[2001:db8::44]:41641'];
  let emit: (() => void) | null = null;
  const events = (onChange: () => void) => {
    emit = onChange;
    return () => {
      emit = null;
    };
  };
  const exit = new DarwinExitRouting(name, fake, logger, async () => endpoints, events);
  return {
    fake,
    name,
    exit,
    setEndpoints: (e: string[]) => {
      endpoints = e;
    },
    emit: () => emit?.(),
    subscribed: () => emit !== null,
  };
}

/** Our routes, in netstat's order, as `dest via netif flags`. */
const table = (fake: FakeDarwin) =>
  fake.routes.filter((r) => r.flags.includes('2')).map((r) => `${r.cidr} ${r.gateway} ${r.netif} ${r.flags}`);

describe('DarwinExitRouting (plain routes on a recorded fake)', () => {
  it('apply: rejects, the four quarters into the utun, host routes via the gateway; again: nothing', async () => {
    const { fake, exit } = setup();
    await exit.apply(plan);
    expectGolden('exit-apply.txt', lines(fake.changes));
    expectGolden('exit-apply-table.txt', lines(table(fake)));
    fake.calls.length = 0;
    await exit.apply(plan);
    expect(fake.changes).toEqual([]);
  });

  it('netmap change / roam of a peer: its host route follows the endpoint', async () => {
    const { fake, exit, setEndpoints } = setup();
    await exit.apply(plan);
    fake.calls.length = 0;
    setEndpoints(['203.0.113.99:41641']);
    await exit.refresh();
    expect(fake.changes).toEqual([
      'route -n add -inet -host 203.0.113.99 192.168.1.1 -proto2',
      'route -n delete -inet -host 203.0.113.5',
      'route -n delete -inet6 -host 2001:db8::44',
    ]);
  });

  it('roam to another network: a route event re-points every host route at the new gateway', async () => {
    const { fake, exit, emit } = setup();
    await exit.apply(plan);
    fake.calls.length = 0;
    fake.routes = fake.routes.filter((r) => r.cidr !== '0.0.0.0/0' && r.cidr !== '::/0');
    fake.routes.push(
      route(4, '0.0.0.0/0', '10.0.0.1', 'UGScg', 'en1'),
      route(4, '10.0.0.0/24', 'link#7', 'UCS', 'en1'),
    );
    emit();
    emit(); // our own changes come back as events too: one refresh for all
    await exit.refresh();
    expect(fake.calls.filter((c) => c === 'netstat -rn -f inet')).toHaveLength(1);
    expectGolden('exit-roam.txt', lines(fake.changes));
    expect(table(fake).filter((r) => r.includes('UGHS2'))).toEqual([
      '198.51.100.7/32 10.0.0.1 en0 UGHS2',
      '203.0.113.5/32 10.0.0.1 en0 UGHS2',
    ]);
  });

  it('fail closed: with the utun gone the rejects stay; apply then says so and adds no quarter', async () => {
    const { fake, exit, name } = setup();
    await exit.apply(plan);
    fake.removeUtun('utun4');
    name.clear();
    expect(table(fake).filter((r) => r.includes('R'))).toEqual([
      '0.0.0.0/1 127.0.0.1 lo0 UGRS2',
      '128.0.0.0/1 127.0.0.1 lo0 UGRS2',
      '::/1 ::1 lo0 UGRS2',
      '8000::/1 ::1 lo0 UGRS2',
    ]);
    fake.calls.length = 0;
    await expect(exit.apply(plan)).rejects.toThrow(/trellis0 has no utun: internet traffic is refused/);
    expect(fake.changes).toEqual([]);
    // WireGuard back on another utun: the quarters follow it.
    fake.addUtun('utun6');
    name.set('utun6');
    await exit.apply(plan);
    expect(fake.changes.filter((c) => c.includes('utun'))).toEqual([
      'route -n add -inet -net 0.0.0.0/2 -interface utun6 -proto2',
      'route -n add -inet -net 64.0.0.0/2 -interface utun6 -proto2',
      'route -n add -inet -net 128.0.0.0/2 -interface utun6 -proto2',
      'route -n add -inet -net 192.0.0.0/2 -interface utun6 -proto2',
    ]);
  });

  it('a host someone else routes already (a static route) keeps that route', async () => {
    const { fake, exit } = setup();
    fake.routes.push(route(4, '198.51.100.7/32', '192.168.1.254', 'UGHS', 'en0', true));
    await exit.apply(plan);
    expect(fake.changes.filter((c) => c.includes('198.51.100.7'))).toEqual([]);
  });

  it('remove: exactly what apply added, quarters first; events no longer followed', async () => {
    const { fake, exit, subscribed } = setup();
    const before = fake.routes.map((r) => ({ ...r }));
    await exit.apply(plan);
    expect(subscribed()).toBe(true);
    fake.calls.length = 0;
    await exit.remove();
    expectGolden('exit-remove.txt', lines(fake.changes));
    expect(fake.routes).toEqual(before);
    expect(subscribed()).toBe(false);
    await exit.remove();
    await exit.refresh();
  });

  it('crash recovery: a dead run’s rejects and host routes go, foreign routes stay', async () => {
    const fake = new FakeDarwin();
    fake.routes.push(
      route(4, '0.0.0.0/1', '127.0.0.1', 'UGRS2', 'lo0'),
      route(4, '128.0.0.0/1', '127.0.0.1', 'UGRS2', 'lo0'),
      route(6, '::/1', '::1', 'UGRS2', 'lo0'),
      route(4, '198.51.100.7/32', '192.168.1.1', 'UGHS2', 'en0', true),
      // Someone else's: a reject without our flag, a flagged network route via a gateway.
      route(4, '198.18.0.0/15', '127.0.0.1', 'UGRS', 'lo0'),
      route(4, '203.0.113.0/24', '192.168.1.254', 'UGS2', 'en0'),
    );
    const exit = new DarwinExitRouting(new UtunName('trellis0'), fake, logger, async () => []);
    await exit.remove();
    expectGolden('exit-crash-recovery.txt', lines(fake.changes));
    expect(table(fake)).toEqual(['203.0.113.0/24 192.168.1.254 en0 UGS2']);
    expect(fake.routes.some((r) => r.cidr === '198.18.0.0/15')).toBe(true);
  });
});
