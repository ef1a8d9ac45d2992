import { DarwinNetworkConfigurator } from '../../src/platform/darwin';
import { UtunName } from '../../src/platform/darwin-interface';
import { canonicalDestination, parseNetstat } from '../../src/platform/darwin-routes';
import { FakeDarwin, netstatName, route } from './fake-darwin';
import { expectGolden, lines } from './golden';

function setup(utun = 'utun4') {
  const fake = new FakeDarwin();
  fake.addUtun(utun);
  const name = new UtunName('trellis0');
  name.set(utun);
  return { fake, name, net: new DarwinNetworkConfigurator(name, fake) };
}

const ours = (fake: FakeDarwin) =>
  fake.routes.filter((r) => r.flags.includes('2')).map((r) => `${r.cidr} ${r.netif}`);

describe('netstat -rn as macOS prints it', () => {
  it('reads BSD destinations back as the CIDRs they are', () => {
    for (const [cidr, shown] of [
      ['0.0.0.0/1', '0/1'],
      ['128.0.0.0/1', '128.0/1'],
      ['192.0.0.0/2', '192.0.0/2'],
      ['100.64.0.0/10', '100.64/10'],
      ['10.0.0.0/8', '10'],
      ['172.16.5.0/24', '172.16.5/24'],
      ['192.168.1.0/24', '192.168.1'],
      ['169.254.0.0/16', '169.254'],
    ] as const) {
      expect(netstatName(route(4, cidr, 'x', 'US', 'en0'))).toBe(shown);
      expect(canonicalDestination(shown, 'US', 4)).toBe(cidr);
    }
    expect(canonicalDestination('192.168.1.1', 'UHLWIir', 4)).toBe('192.168.1.1/32');
    expect(canonicalDestination('default', 'UGScg', 6)).toBe('::/0');
    expect(canonicalDestination('fe80::%lo0/64', 'UcI', 6)).toBe('fe80::/64');
    expect(canonicalDestination('link#6', 'U', 4)).toBeNull();
  });

  it('finds the Netif column by the header, with or without Refs and Use', () => {
    const old = [
      'Internet:',
      'Destination        Gateway            Flags        Refs      Use   Netif Expire',
      'default            192.168.1.1        UGSc           62        0     en0',
      '10.1/16            utun4              US2             0        0   utun4',
    ].join('\n');
    expect(parseNetstat(old, 4).map((r) => [r.destination, r.netif, r.flags])).toEqual([
      ['0.0.0.0/0', 'en0', 'UGSc'],
      ['10.1.0.0/16', 'utun4', 'US2'],
    ]);
  });
});

describe('DarwinNetworkConfigurator (ifconfig, route, netstat on a recorded fake)', () => {
  it('up: address on the utun, link up, the overlay routed into it; again: nothing to do', async () => {
    const { fake, net } = setup();
    await net.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    expectGolden('network-up.txt', lines(fake.calls));
    expect(fake.interfaces.get('utun4')).toEqual({ up: true, inet: ['100.64.0.1'] });
    fake.calls.length = 0;
    await net.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    expect(fake.changes).toEqual([]);
    // Re-addressed by the broker: the old address goes.
    await net.apply('trellis0', '100.64.0.9', '100.64.0.0/10');
    expect(fake.changes).toEqual([
      'ifconfig utun4 inet 100.64.0.1 -alias',
      'ifconfig utun4 inet 100.64.0.9 100.64.0.9 netmask 255.255.255.255 alias',
    ]);
  });

  it('netmap change: exactly the wanted subnet routes, a prefix another route has is left to it', async () => {
    const { fake, net } = setup();
    await net.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    fake.calls.length = 0;
    // 172.16.5.0/24 is the LAN router's, 10.200.0.0/16 another VPN's: both stay theirs.
    await net.setRoutes('trellis0', ['10.1.0.0/16', '172.16.5.0/24', '10.200.0.0/16', '192.0.2.7/32']);
    await net.setRoutes('trellis0', ['10.2.0.0/16', '192.0.2.7/32']);
    await net.setRoutes('trellis0', ['10.2.0.0/16', '192.0.2.7/32']);
    expectGolden('network-netmap-change.txt', lines(fake.changes));
    expect(ours(fake)).toEqual(['192.0.2.7/32 utun4', '10.2.0.0/16 utun4']);
    expect(fake.routes.find((r) => r.cidr === '172.16.5.0/24')?.netif).toBe('en0');
    expect(fake.routes.find((r) => r.cidr === '10.200.0.0/16')?.netif).toBe('utun2');
  });

  it('down: our routes and the overlay route go, the link goes down, nothing else is touched', async () => {
    const { fake, net } = setup();
    const before = fake.routes.map((r) => ({ ...r }));
    await net.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    await net.setRoutes('trellis0', ['10.1.0.0/16']);
    fake.calls.length = 0;
    await net.remove('trellis0', '100.64.0.0/10');
    expectGolden('network-down.txt', lines(fake.changes));
    expect(fake.routes).toEqual(before);
    expect(fake.interfaces.get('utun4')?.up).toBe(false);
    // WireGuard already gone: nothing of ours can be left on its utun, and that is not an error.
    const name = new UtunName('trellis0');
    await new DarwinNetworkConfigurator(name, fake).remove('trellis0', '100.64.0.0/10');
  });

  it('crash recovery: a dead run’s routes on its old utun go, foreign ones (flagged too) stay', async () => {
    const { fake, net } = setup('utun5');
    fake.addUtun('utun3'); // the orphan's utun, still there
    fake.routes.push(
      route(4, '10.1.0.0/16', 'utun3', 'US2', 'utun3'),
      route(4, '10.9.0.0/16', 'utun3', 'US2', 'utun3'),
      // Not ours though flagged: through a gateway, not a utun.
      route(4, '203.0.113.0/24', '192.168.1.254', 'UGS2', 'en0'),
    );
    await net.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    await net.setRoutes('trellis0', ['10.1.0.0/16']);
    expectGolden('network-crash-recovery.txt', lines(fake.changes));
    expect(ours(fake)).toEqual(['203.0.113.0/24 en0', '10.1.0.0/16 utun5']);
  });

  it('roam: keep-out hosts are re-read (gateway from route get, servers from scutil --dns)', async () => {
    const { fake, net } = setup();
    expect(await net.keepOutHosts()).toEqual([
      { address: '192.168.1.1', what: 'the default gateway' },
      { address: '192.168.1.53', what: 'the DNS server' },
    ]);
    fake.routes = fake.routes.filter((r) => r.cidr !== '0.0.0.0/0');
    fake.routes.push(route(4, '0.0.0.0/0', '10.0.0.1', 'UGScg', 'en1'));
    expect((await net.keepOutHosts())[0]).toEqual({ address: '10.0.0.1', what: 'the default gateway' });
  });

  it('refuses to configure before WireGuard has a utun', async () => {
    const net = new DarwinNetworkConfigurator(new UtunName('trellis0'), new FakeDarwin());
    await expect(net.apply('trellis0', '100.64.0.1', '100.64.0.0/10')).rejects.toThrow(/no utun/);
  });
});
