import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayPrefs } from '@trellis/proto';
import { Command } from 'commander';
import pino from 'pino';
import { addGatewayFlags, prefsFromFlags } from '../../src/cli/gateway-flags';
import { EXIT_NODE_PIN_FILE } from '../../src/routes/exit-node-pin';
import {
  advertisedRoutes,
  DEFAULT_GATEWAY_PREFS,
  GATEWAY_PREFS_FILE,
  GatewayPrefsStore,
  GatewaySettings,
  mergePrefs,
} from '../../src/routes/gateway-prefs';

/** Parses argv as `trellis set ARGS` would, returning the settings it sends. */
function parse(...args: string[]) {
  let out: ReturnType<typeof prefsFromFlags>;
  const cmd = addGatewayFlags(new Command('set')).exitOverride();
  cmd.action((o) => {
    out = prefsFromFlags(o);
  });
  cmd.parse(args, { from: 'user' });
  return out;
}

describe('gateway flags', () => {
  it('reads comma lists, repeats, booleans and the exit node', () => {
    expect(
      parse(
        '--advertise-routes',
        '192.168.1.0/24,10.0.0.0/8',
        '--advertise-routes',
        '172.16.0.0/12',
        '--advertise-exit-node',
        '--snat-routes',
        'false',
        '--accept-routes=true',
        '--exit-node',
        'exit-1',
        '--exit-node-allow-lan',
        'no',
      ),
    ).toEqual({
      advertiseRoutes: ['192.168.1.0/24', '10.0.0.0/8', '172.16.0.0/12'],
      advertiseExitNode: true,
      snatRoutes: false,
      acceptRoutes: true,
      exitNode: 'exit-1',
      exitNodeAllowLan: false,
    });
  });

  it('clears with empty strings, and gives nothing when no flag is set', () => {
    expect(parse('--exit-node', '', '--advertise-routes', '')).toEqual({
      exitNode: null,
      advertiseRoutes: [],
    });
    expect(parse('--advertise-exit-node', 'false')).toEqual({ advertiseExitNode: false });
    expect(parse()).toBeUndefined();
  });

  it('refuses bad values with a message naming the flag', () => {
    expect(() => parse('--snat-routes', 'maybe')).toThrow('--snat-routes takes true or false, not "maybe"');
    expect(() => parse('--advertise-routes', '192.168.1.1/24')).toThrow(
      '--advertise-routes "192.168.1.1/24": must have its host bits clear',
    );
    expect(() => parse('--advertise-routes', '0.0.0.0/0')).toThrow(
      '--advertise-routes "0.0.0.0/0": a default route is an exit node (offer it with --advertise-exit-node)',
    );
    expect(() => parse('--advertise-routes', '100.64.1.0/24')).toThrow(/overlay/);
    expect(() => parse('--advertise-exit-node', 'sure')).toThrow('--advertise-exit-node takes true or false');
  });
});

describe('gateway prefs', () => {
  it('merges a change over the settings in force', () => {
    const merged = mergePrefs(DEFAULT_GATEWAY_PREFS, {
      advertiseRoutes: ['10.0.0.0/8', '10.0.0.0/8', '192.168.1.0/24'],
      exitNode: 'x',
    });
    expect(merged).toEqual({
      ...DEFAULT_GATEWAY_PREFS,
      advertiseRoutes: ['10.0.0.0/8', '192.168.1.0/24'],
      exitNode: 'x',
    });
    expect(mergePrefs(merged, { exitNode: null }).exitNode).toBeNull();
    expect(advertisedRoutes({ ...merged, advertiseExitNode: true })).toEqual([
      '10.0.0.0/8',
      '192.168.1.0/24',
      '0.0.0.0/0',
    ]);
  });

  it('keeps them in the state directory (0600), defaults when never saved, refuses a bad file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-prefs-'));
    const store = new GatewayPrefsStore(dir);
    expect(await store.load()).toEqual(DEFAULT_GATEWAY_PREFS);
    const p = { ...DEFAULT_GATEWAY_PREFS, advertiseRoutes: ['10.0.0.0/8'], snatRoutes: false };
    await store.save(p);
    expect(await new GatewayPrefsStore(dir).load()).toEqual(p);
    expect((await stat(join(dir, GATEWAY_PREFS_FILE))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(dir, GATEWAY_PREFS_FILE), 'utf8'))).toEqual(p);
    await writeFile(join(dir, GATEWAY_PREFS_FILE), '{"advertiseRoutes":["nope"]}');
    await expect(store.load()).rejects.toThrow(/is invalid/);
    await rm(dir, { recursive: true });
  });
});

describe('exit node pin', () => {
  const pin = { id: '00000000-0000-4000-8000-000000000009', publicKey: `${'k'.repeat(43)}=` };
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-prefs-'));
  });
  afterEach(() => rm(dir, { recursive: true }));

  const prefsFile = async () => JSON.parse(await readFile(join(dir, GATEWAY_PREFS_FILE), 'utf8'));
  const pinFile = async () => JSON.parse(await readFile(join(dir, EXIT_NODE_PIN_FILE), 'utf8'));

  it('is saved in its own file and loaded back, for the choice it was made for only', async () => {
    const s = new GatewaySettings(dir);
    await s.load();
    expect(await s.change({ exitNode: 'laptop' })).toBe(true);
    expect(s.exitNodePin()).toBeNull();
    await s.pinExitNode('laptop', pin);
    expect(s.exitNodePin()).toEqual(pin);
    // gateway-prefs.json holds the settings alone: an older agent still reads it (downgrade).
    expect(await prefsFile()).toEqual({ ...DEFAULT_GATEWAY_PREFS, exitNode: 'laptop' });
    expect(GatewayPrefs.safeParse(await prefsFile()).success).toBe(true);
    expect(await pinFile()).toEqual({ exitNode: 'laptop', ...pin });
    expect((await stat(join(dir, EXIT_NODE_PIN_FILE))).mode & 0o777).toBe(0o600);
    const again = new GatewaySettings(dir);
    await again.load();
    expect(again.exitNodePin()).toEqual(pin);
    expect(again.current.exitNode).toBe('laptop');
    // Not a setting: status and `set` never see it.
    expect(again.current).not.toHaveProperty('exitNodePin');
    // A pin for a choice no longer in force is ignored.
    await again.pinExitNode('desktop', { ...pin, id: '00000000-0000-4000-8000-00000000000a' });
    expect(again.exitNodePin()).toEqual(pin);
  });

  it('is no pin when made for another choice (changed by an older agent after a downgrade)', async () => {
    await writeFile(join(dir, GATEWAY_PREFS_FILE), JSON.stringify({ exitNode: 'desktop' }));
    await writeFile(join(dir, EXIT_NODE_PIN_FILE), JSON.stringify({ exitNode: 'laptop', ...pin }));
    const s = new GatewaySettings(dir);
    await s.load();
    expect(s.exitNodePin()).toBeNull();
  });

  it('survives other changes, and `set` choosing an exit node again (even the same one) re-pins', async () => {
    const s = new GatewaySettings(dir);
    await s.load();
    await s.change({ exitNode: 'laptop' });
    await s.pinExitNode('laptop', pin);
    expect(await s.change({ acceptRoutes: false })).toBe(true);
    expect(s.exitNodePin()).toEqual(pin);
    expect(await s.change({ exitNode: 'laptop' }, 'set')).toBe(true);
    expect(s.exitNodePin()).toBeNull();
    expect(await s.change({ exitNode: 'laptop' })).toBe(false);
    await s.pinExitNode('laptop', pin);
    await s.change({ exitNode: null });
    const again = new GatewaySettings(dir);
    await again.load();
    expect(again.exitNodePin()).toBeNull();
  });

  it('survives `up` giving the same exit node again (a boot script), not another one', async () => {
    const s = new GatewaySettings(dir);
    await s.load();
    await s.change({ exitNode: 'laptop' }, 'up');
    await s.pinExitNode('laptop', pin);
    expect(await s.change({ exitNode: 'laptop', acceptRoutes: true }, 'up')).toBe(false);
    expect(s.exitNodePin()).toEqual(pin);
    const again = new GatewaySettings(dir);
    await again.load();
    expect(again.exitNodePin()).toEqual(pin);
    expect(await again.change({ exitNode: 'desktop' }, 'up')).toBe(true);
    expect(again.exitNodePin()).toBeNull();
    await expect(readFile(join(dir, EXIT_NODE_PIN_FILE))).rejects.toThrow(/ENOENT/);
  });

  it('is not taken as saved when its write fails: pinned again at the next try', async () => {
    const s = new GatewaySettings(dir);
    await s.load();
    await s.change({ exitNode: 'laptop' });
    await mkdir(join(dir, EXIT_NODE_PIN_FILE, 'in-the-way'), { recursive: true }); // rename fails
    await expect(s.pinExitNode('laptop', pin)).rejects.toThrow();
    expect(s.exitNodePin()).toBeNull();
    await rm(join(dir, EXIT_NODE_PIN_FILE), { recursive: true });
    await s.pinExitNode('laptop', pin);
    expect(s.exitNodePin()).toEqual(pin);
    expect(await pinFile()).toEqual({ exitNode: 'laptop', ...pin });
  });

  it('reads a malformed pin file as no pin, and says so, rather than refuse to start', async () => {
    await writeFile(join(dir, GATEWAY_PREFS_FILE), JSON.stringify({ exitNode: 'laptop' }));
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    for (const bad of ['{not json', JSON.stringify({ exitNode: 'laptop', id: 'x', publicKey: 'nope' })]) {
      await writeFile(join(dir, EXIT_NODE_PIN_FILE), bad);
      const s = new GatewaySettings(dir, log);
      await s.load();
      expect(s.current.exitNode).toBe('laptop');
      expect(s.exitNodePin()).toBeNull();
    }
    expect(lines.join('')).toContain('exit node pin malformed');
  });
});
