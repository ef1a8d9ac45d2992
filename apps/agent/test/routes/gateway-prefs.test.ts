import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { addGatewayFlags, prefsFromFlags } from '../../src/cli/gateway-flags';
import {
  advertisedRoutes,
  DEFAULT_GATEWAY_PREFS,
  GATEWAY_PREFS_FILE,
  GatewayPrefsStore,
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
