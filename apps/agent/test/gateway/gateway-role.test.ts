import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayFirewall, GatewayPolicy } from '@trellis/firewall';
import pino from 'pino';
import { GatewayRole } from '../../src/gateway/gateway-role';
import { IP_FORWARD_REMEMBERED, IpForward, type SysctlFile } from '../../src/gateway/ip-forward';

const logger = pino({ level: 'silent' });

/** A sysctl file that is an ordinary file, and a firewall that records what it was asked. */
async function setup(initial: string) {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-gw-'));
  const sysctlPath = join(dir, 'ip_forward');
  await writeFile(sysctlPath, `${initial}\n`);
  const sysctl: SysctlFile = {
    read: (p) => readFile(p, 'utf8'),
    write: (p, v) => writeFile(p, v),
  };
  const events: string[] = [];
  const firewall: GatewayFirewall = {
    name: 'fake',
    apply: async (p) => {
      events.push(`apply ${p.lan?.routes.join(',') ?? '-'}`);
      return { changed: true };
    },
    remove: async () => {
      events.push('remove');
    },
  };
  const forward = () => new IpForward(dir, sysctl, sysctlPath);
  const value = async () => (await readFile(sysctlPath, 'utf8')).trim();
  const remembered = () =>
    readFile(join(dir, IP_FORWARD_REMEMBERED), 'utf8').then(
      (t) => t.trim(),
      () => null,
    );
  return { dir, events, firewall, forward, value, remembered };
}

const POLICY: GatewayPolicy = {
  meshInterface: 'trellis0',
  selfAddress: '100.64.0.1',
  lan: { interfaceName: 'eth1', routes: ['192.168.1.0/24'], masquerade: true },
  virtualDevices: [],
  access: [],
};

describe('GatewayRole', () => {
  it('switches ip_forward on while the role is on, and puts back what it was when it ends', async () => {
    const t = await setup('0');
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await role.apply(POLICY);
    expect(await t.value()).toBe('1');
    // What it was, alone (the role always sets 1): the format an older agent reads after a downgrade.
    expect(await t.remembered()).toBe('0');
    expect(role.active).toBe(true);
    await role.apply(POLICY); // a second apply keeps the first remembered value
    expect(await t.remembered()).toBe('0');
    await role.apply(null);
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull();
    expect(t.events).toEqual(['apply 192.168.1.0/24', 'apply 192.168.1.0/24', 'remove']);
    await rm(t.dir, { recursive: true });
  });

  it('leaves a host that already forwarded forwarding', async () => {
    const t = await setup('1');
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await role.apply(POLICY);
    await role.end();
    expect(await t.value()).toBe('1');
    await rm(t.dir, { recursive: true });
  });

  it('restores the value a crashed run remembered on the next start', async () => {
    const t = await setup('0');
    await new GatewayRole(t.firewall, t.forward(), logger).apply(POLICY); // then "crashes"
    expect(await t.value()).toBe('1');
    const next = new GatewayRole(t.firewall, t.forward(), logger);
    await next.recover();
    expect(await t.value()).toBe('0');
    expect(t.events.at(-1)).toBe('remove');
    expect(await t.remembered()).toBeNull();
    await rm(t.dir, { recursive: true });
  });

  it('leaves ip_forward alone when another program changed it after the role set it, and says so', async () => {
    const t = await setup('1');
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const role = new GatewayRole(t.firewall, t.forward(), log);
    await role.apply(POLICY);
    expect(await t.remembered()).toBe('1');
    await writeFile(join(t.dir, 'ip_forward'), '0\n'); // the admin switched forwarding off meanwhile
    await role.end();
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull(); // not ours to put back any more, now or at a later start
    expect(lines.join('')).toContain('changed by another program');
    await rm(t.dir, { recursive: true });
  });

  it('after a crash, leaves a value another program changed since, and restores one it did not', async () => {
    const t = await setup('1');
    await new GatewayRole(t.firewall, t.forward(), logger).apply(POLICY); // then "crashes"
    await writeFile(join(t.dir, 'ip_forward'), '0\n');
    await new GatewayRole(t.firewall, t.forward(), logger).recover();
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull();
    // Still the 1 the role set: put back.
    await writeFile(join(t.dir, IP_FORWARD_REMEMBERED), '0\n');
    await writeFile(join(t.dir, 'ip_forward'), '1\n');
    await new GatewayRole(t.firewall, t.forward(), logger).recover();
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull();
    await rm(t.dir, { recursive: true });
  });

  it('cannot tell a 1 another program wrote after the role (docker) from its own: off with the role', async () => {
    const t = await setup('0');
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await role.apply(POLICY);
    await writeFile(join(t.dir, 'ip_forward'), '1\n'); // docker starting meanwhile
    await role.end();
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull();
    await rm(t.dir, { recursive: true });
  });

  it('takes rules a killed run left away at the first end, even without a role of its own', async () => {
    const t = await setup('0');
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await role.end();
    await role.end();
    expect(t.events).toEqual(['remove']);
    await rm(t.dir, { recursive: true });
  });

  it('does not switch forwarding on when the rules fail to load', async () => {
    const t = await setup('0');
    t.firewall.apply = async () => {
      throw new Error('nft: syntax error');
    };
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await expect(role.apply(POLICY)).rejects.toThrow('syntax error');
    expect(await t.value()).toBe('0');
    expect(role.lastError).toBe('nft: syntax error');
    await rm(t.dir, { recursive: true });
  });

  it('turns forwarding off and removes the rules when a later apply fails, and retries next time', async () => {
    const t = await setup('0');
    const role = new GatewayRole(t.firewall, t.forward(), logger);
    await role.apply(POLICY);
    expect(await t.value()).toBe('1');
    const good = t.firewall.apply;
    t.firewall.apply = async () => {
      throw new Error('nft: no such table');
    };
    await expect(role.apply(POLICY)).rejects.toThrow('no such table');
    expect(await t.value()).toBe('0');
    expect(await t.remembered()).toBeNull();
    expect(t.events.at(-1)).toBe('remove');
    expect(role.active).toBe(false);
    t.firewall.apply = good;
    await role.apply(POLICY);
    expect(await t.value()).toBe('1');
    expect(role.active).toBe(true);
    await rm(t.dir, { recursive: true });
  });
});
