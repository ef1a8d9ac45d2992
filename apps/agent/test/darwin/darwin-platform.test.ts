import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@trellis/crypto';
import pino from 'pino';
import { DarwinPlatform } from '../../src/platform/darwin-platform';
import type { OsPlatformOptions } from '../../src/platform/os-platform';
import { FakeDarwin } from './fake-darwin';
import { FakeChild, FakeWireguardGo } from './fake-wireguard-go';
import { expectGolden, lines } from './golden';

const logger = pino({ level: 'silent' });

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'trl-mac-'));
  const resolverDir = join(root, 'resolver');
  mkdirSync(resolverDir);
  const fake = new FakeDarwin();
  const wg = new FakeWireguardGo(root);
  wg.onStarted = (utun) => fake.addUtun(utun);
  const monitors: FakeChild[] = [];
  fake.spawner = (command, args, options) => {
    if (command === 'route') {
      const child = new FakeChild(9000 + monitors.length);
      monitors.push(child);
      return child.asChildProcess();
    }
    return wg.spawn(command, args, options);
  };
  const opts: OsPlatformOptions = {
    interfaceName: 'trellis0',
    stateDir: join(root, 'state'),
    wireguard: 'auto',
    dns: 'auto',
    resolvConf: '/etc/resolv.conf',
    runner: fake,
    logger,
  };
  const platform = new DarwinPlatform(opts, { resolverDir, uapiSocketDir: root, restartDelayMs: 0 });
  return { fake, wg, platform, resolverDir, monitors, root };
}

const exitPlan = { interfaceName: 'trellis0', fwmark: 0x7472, allowLan: true, bypass: ['198.51.100.7'] };

describe('DarwinPlatform: the agent’s logical name mapped to the utun, scenario by scenario', () => {
  it('up, netmap change, exit node, peer roam, down: every command, in order', async () => {
    const { fake, platform, resolverDir, monitors } = setup();
    expect(platform.os).toBe('darwin');
    const wireguard = await platform.wireguard();
    const { resolver, recover } = await platform.resolver();
    await recover('trellis0');
    // up
    await wireguard.start();
    expect(platform.utun.utun).toBe('utun7');
    const peer = generateKeyPair().publicKey;
    await wireguard.apply({
      privateKey: generateKeyPair().privateKey,
      peers: [{ publicKey: peer, endpoint: '203.0.113.5:41641', allowedIps: ['100.64.0.2/32'] }],
    });
    await platform.network.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    await resolver!.apply({ interfaceName: 'trellis0', server: '100.64.0.1', domain: 'acme.ts.example' });
    // netmap change
    await platform.network.setRoutes('trellis0', ['10.1.0.0/16']);
    await platform.network.setRoutes('trellis0', ['10.2.0.0/16']);
    // exit node: routes, then every name to the stub
    await platform.exitRouting.apply(exitPlan);
    expect(monitors).toHaveLength(1);
    await resolver!.apply({
      interfaceName: 'trellis0',
      server: '100.64.0.1',
      domain: 'acme.ts.example',
      defaultRoute: true,
    });
    // the peer roams: its new endpoint gets its direct route at once
    await wireguard.apply({ peers: [{ publicKey: peer, endpoint: '203.0.113.99:41641' }] });
    await platform.exitRouting.refresh();
    // down, in the agent's order
    await platform.exitRouting.remove();
    expect(monitors[0]!.signals).toEqual(['SIGTERM']);
    await resolver!.restore('trellis0');
    await platform.network.remove('trellis0', '100.64.0.0/10');
    await wireguard.stop();
    fake.removeUtun('utun7');
    expectGolden(
      'platform-scenario.txt',
      lines(fake.changes.map((c) => c.replace(/=\S*wireguard-go\.name/, '=<state>/wireguard-go.name'))),
    );
    expect(fake.routes.filter((r) => r.flags.includes('2'))).toEqual([]);
    expect(readdirSync(resolverDir)).toEqual([]);
    expect(fake.services.get('Wi-Fi')).toEqual([]);
    expect(platform.utun.utun).toBeNull();
  });

  it('wireguard-go crashes with an exit node in use: refused meanwhile, re-applied on the new utun', async () => {
    const { fake, wg, platform } = setup();
    const wireguard = await platform.wireguard();
    await wireguard.start();
    await platform.network.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    await platform.exitRouting.apply(exitPlan);
    const recreated = new Promise<void>((resolve) => wireguard.onRecreated(resolve));
    wg.crash();
    fake.removeUtun('utun7'); // the kernel drops the utun and its routes
    const rejects = fake.routes.filter((r) => r.flags.includes('R')).map((r) => r.cidr);
    expect(rejects).toEqual(['0.0.0.0/1', '128.0.0.0/1', '::/1', '8000::/1']);
    expect(fake.routes.some((r) => r.netif.startsWith('utun7'))).toBe(false);
    await recreated;
    // What the agent and the exit-node controller do on onRecreated.
    await platform.network.apply('trellis0', '100.64.0.1', '100.64.0.0/10');
    await platform.exitRouting.apply(exitPlan);
    expect(fake.routes.filter((r) => r.netif === 'utun8').map((r) => r.cidr)).toEqual([
      '100.64.0.0/10',
      '0.0.0.0/2',
      '64.0.0.0/2',
      '128.0.0.0/2',
      '192.0.0.0/2',
    ]);
    await platform.exitRouting.remove();
    await wireguard.stop();
  });

  it('has no kernel WireGuard', () => {
    const { fake } = setup();
    const opts = {
      interfaceName: 'trellis0',
      stateDir: '/x',
      wireguard: 'kernel',
      dns: 'auto',
      resolvConf: '',
      runner: fake,
      logger,
    } as const;
    expect(() => new DarwinPlatform(opts)).toThrow(/no kernel WireGuard/);
  });
});
