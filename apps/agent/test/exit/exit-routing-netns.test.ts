import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ExitNodeController, type ExitNodeInput } from '../../src/exit/exit-node-controller';
import { LinuxExitRouting } from '../../src/exit/linux';
import { NetnsCommandRunner } from '../../src/util/command-runner';
import { UserspaceBackend } from '../../src/wireguard/userspace';
import { WgToolClient } from '../../src/wireguard/wg-tool';
import { TestNetns } from '../helpers/netns';

// Real `ip rule`/`ip route` in a namespace, with real wireguard-go as the mesh interface (its mark
// set through UAPI): a client whose exit node is wanted but absent sends nothing to the ISP.

jest.setTimeout(60_000);

function blocker(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  for (const tool of ['ip', 'wireguard-go', 'ping']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing`;
    }
  }
  return undefined;
}

const why = blocker();
const LAN_ROUTER = '10.99.0.1';
const INTERNET = '203.0.113.1';
const BROKER = '198.51.100.7';
const V6_INTERNET = '2001:db8::1';

if (why) {
  describe('exit node routing in a namespace', () => {
    it.skip(`skipped: ${why} (needs root, ip, wireguard-go and ping)`, () => undefined);
  });
} else {
  describe('exit node routing in a namespace', () => {
    const tag = process.pid % 100000;
    const client = TestNetns.create(`trl-exc-${process.pid}`);
    const isp = TestNetns.create(`trl-exi-${process.pid}`);
    const runner = new NetnsCommandRunner(client.name);
    const ifname = `trlx${tag}`;
    const logger = pino({ level: 'silent' });
    const wireguard = new UserspaceBackend({
      interfaceName: ifname,
      runner,
      logger,
      pidFile: join(mkdtempSync(join(tmpdir(), 'trellis-exit-')), 'wireguard-go.pid'),
    });
    const controller = new ExitNodeController({
      routing: new LinuxExitRouting(runner, logger),
      wireguard,
      dns: null,
      logger,
    });
    const wantedButGone: ExitNodeInput = {
      interfaceName: ifname,
      wanted: 'gw-b',
      chosen: null,
      active: false,
      allowLan: false,
      bypass: [BROKER],
    };
    /** One echo answered within `seconds` (5 while IPv6 neighbours may still be settling). */
    const reaches = (address: string, seconds = 1) => {
      try {
        client.exec('ping', [
          ...(address.includes(':') ? ['-6'] : []),
          '-c',
          '1',
          '-w',
          String(seconds),
          address,
        ]);
        return true;
      } catch {
        return false;
      }
    };
    const routeOf = (args: string[]) => {
      try {
        return client.exec('ip', ['route', 'get', ...args]);
      } catch (err) {
        return `refused: ${(err as { stderr?: string }).stderr ?? ''}`;
      }
    };

    beforeAll(async () => {
      execFileSync('ip', [
        'link',
        'add',
        `ve${tag}a`,
        'netns',
        client.name,
        'type',
        'veth',
        'peer',
        'name',
        `ve${tag}b`,
        'netns',
        isp.name,
      ]);
      client.exec('ip', ['link', 'set', `ve${tag}a`, 'name', 'eth0']);
      isp.exec('ip', ['link', 'set', `ve${tag}b`, 'name', 'eth0']);
      client.exec('ip', ['addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
      client.exec('ip', ['-6', 'addr', 'add', 'fd00:99::2/64', 'dev', 'eth0', 'nodad']);
      isp.exec('ip', ['addr', 'add', `${LAN_ROUTER}/24`, 'dev', 'eth0']);
      isp.exec('ip', ['-6', 'addr', 'add', 'fd00:99::1/64', 'dev', 'eth0', 'nodad']);
      for (const a of [`${INTERNET}/32`, `${BROKER}/32`]) isp.exec('ip', ['addr', 'add', a, 'dev', 'lo']);
      isp.exec('ip', ['-6', 'addr', 'add', `${V6_INTERNET}/128`, 'dev', 'lo']);
      client.exec('ip', ['link', 'set', 'eth0', 'up']);
      isp.exec('ip', ['link', 'set', 'eth0', 'up']);
      client.exec('ip', ['route', 'add', 'default', 'via', LAN_ROUTER]);
      client.exec('ip', ['-6', 'route', 'add', 'default', 'via', 'fd00:99::1']);
      await wireguard.start();
      client.exec('ip', ['addr', 'add', '100.64.0.2/10', 'dev', ifname]);
      client.exec('ip', ['link', 'set', ifname, 'up']);
    });

    afterAll(async () => {
      await controller.remove().catch(() => undefined);
      await wireguard.stop().catch(() => undefined);
      client.delete();
      isp.delete();
    });

    it('reaches the internet, the broker and IPv6 by the ISP before any exit node', () => {
      expect(reaches(INTERNET)).toBe(true);
      expect(reaches(BROKER)).toBe(true);
      expect(reaches(V6_INTERNET, 5)).toBe(true);
    });

    it('with the exit node wanted but gone, only the bypass address and WireGuard itself leave by eth0', async () => {
      await controller.apply(wantedButGone);
      expect(controller.status()).toMatchObject({ state: 'blocked', name: 'gw-b' });
      expect((await wireguard.getState()).fwmark).toBe(0x7472);
      expect((await new WgToolClient(runner, ifname).get()).fwmark).toBe(0x7472); // the kernel path's reader
      expect(routeOf([INTERNET])).toContain(`dev ${ifname}`);
      expect(routeOf([INTERNET, 'mark', '0x7472'])).toContain('dev eth0');
      expect(routeOf([BROKER])).toContain('dev eth0');
      expect(reaches(INTERNET)).toBe(false);
      expect(reaches(LAN_ROUTER)).toBe(false); // allowLan off: the LAN too goes into the mesh
      expect(reaches(BROKER)).toBe(true);
      expect(routeOf([V6_INTERNET])).toMatch(/refused/);
      expect(reaches(V6_INTERNET)).toBe(false);
    });

    it('allowLan lets the LAN through and nothing else', async () => {
      await controller.apply({ ...wantedButGone, allowLan: true });
      expect(reaches(LAN_ROUTER)).toBe(true);
      expect(reaches(INTERNET)).toBe(false);
      expect(reaches(V6_INTERNET)).toBe(false);
    });

    it('stays closed when the mesh interface is gone', async () => {
      await controller.apply(wantedButGone);
      await wireguard.stop();
      expect(routeOf([INTERNET])).toMatch(/refused/);
      expect(reaches(INTERNET)).toBe(false);
      expect(reaches(BROKER)).toBe(true);
    });

    it('remove puts the routing back as it was', async () => {
      await controller.remove();
      expect(client.exec('ip', ['rule', 'show'])).not.toContain('29810');
      expect(client.exec('ip', ['-6', 'rule', 'show'])).not.toContain('29810');
      expect(reaches(INTERNET)).toBe(true);
      expect(reaches(V6_INTERNET, 5)).toBe(true);
    });
  });
}
