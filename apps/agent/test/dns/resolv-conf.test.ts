import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import {
  MANAGED_MARK,
  managedResolvConf,
  nameserversOf,
  ResolvConfConfigurator,
} from '../../src/platform/resolv-conf';

const logger = pino({ level: 'silent' });
const SETTINGS = { interfaceName: 'trellis0', server: '100.64.0.5', domain: 'acme.ts.example' };
const ORIGINAL =
  '# from DHCP\nnameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch lan corp.example\noptions edns0 ndots:2\n';

describe('ResolvConfConfigurator', () => {
  let dir: string;
  let path: string;
  let state: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trl-resolv-'));
    path = join(dir, 'resolv.conf');
    state = join(dir, 'state');
    mkdirSync(state);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('makes the stub the nameserver, keeps the rest, and restores the original byte for byte', async () => {
    writeFileSync(path, ORIGINAL);
    const c = new ResolvConfConfigurator(path, state, logger);
    expect(await c.upstreams()).toEqual([
      { address: '10.0.0.53', port: 53 },
      { address: '10.0.0.54', port: 53 },
    ]);
    await c.apply(SETTINGS);
    const managed = readFileSync(path, 'utf8');
    expect(managed.startsWith(MANAGED_MARK)).toBe(true);
    expect(nameserversOf(managed)).toEqual([{ address: '100.64.0.5', port: 53 }]);
    expect(managed).toContain('\nsearch acme.ts.example lan corp.example\n');
    expect(managed).toContain('\noptions edns0 ndots:2\n');
    // While managed, the upstreams are still the original's.
    expect((await c.upstreams()).map((u) => u.address)).toEqual(['10.0.0.53', '10.0.0.54']);
    await c.apply(SETTINGS); // idempotent
    expect(readFileSync(path, 'utf8')).toBe(managed);
    await c.restore();
    expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
    await c.restore(); // nothing left to do
    expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
  });

  it('after a crash, a new run restores the original the old one saved', async () => {
    writeFileSync(path, ORIGINAL);
    await new ResolvConfConfigurator(path, state, logger).apply(SETTINGS);
    // The process dies here; the next start makes a fresh configurator from the same state.
    await new ResolvConfConfigurator(path, state, logger).restore();
    expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
  });

  it('leaves a file that another program rewrote since, and takes it as the new original', async () => {
    writeFileSync(path, ORIGINAL);
    const c = new ResolvConfConfigurator(path, state, logger);
    await c.apply(SETTINGS);
    const dhcp = 'nameserver 192.168.1.1\n';
    writeFileSync(path, dhcp);
    await c.apply(SETTINGS);
    expect(nameserversOf(readFileSync(path, 'utf8'))).toEqual([{ address: '100.64.0.5', port: 53 }]);
    expect((await c.upstreams()).map((u) => u.address)).toEqual(['192.168.1.1']);
    await c.restore();
    expect(readFileSync(path, 'utf8')).toBe(dhcp);
    writeFileSync(path, 'nameserver 192.168.9.9\n');
    await c.restore(); // no backup, not ours: untouched
    expect(readFileSync(path, 'utf8')).toBe('nameserver 192.168.9.9\n');
  });

  it('writes through a symlink, leaving the link in place', async () => {
    const target = join(dir, 'run-resolv.conf');
    writeFileSync(target, ORIGINAL);
    symlinkSync(target, path);
    const c = new ResolvConfConfigurator(path, state, logger);
    await c.apply(SETTINGS);
    expect(readFileSync(target, 'utf8').startsWith(MANAGED_MARK)).toBe(true);
    await c.restore();
    expect(readFileSync(target, 'utf8')).toBe(ORIGINAL);
    expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
  });

  it('refuses to guess when its own file is there but the original is gone', async () => {
    writeFileSync(path, managedResolvConf(ORIGINAL, SETTINGS));
    await expect(new ResolvConfConfigurator(path, state, logger).apply(SETTINGS)).rejects.toThrow(
      /original is gone/,
    );
  });

  it('any original comes back exactly, and the managed file names only the stub', async () => {
    const line = fc.oneof(
      fc.constantFrom(
        'nameserver 10.1.1.1',
        'nameserver fe80::1%eth0',
        'search a b',
        'domain x',
        'options rotate',
        '',
      ),
      fc.string({ maxLength: 40 }).filter((s) => !s.includes('\n')),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 12 }), fc.boolean(), async (lines, newline) => {
        const original = lines.join('\n') + (newline ? '\n' : '');
        if (original.startsWith(MANAGED_MARK)) return;
        writeFileSync(path, original);
        const c = new ResolvConfConfigurator(path, state, logger);
        await c.apply(SETTINGS);
        const managed = readFileSync(path, 'utf8');
        expect(nameserversOf(managed)).toEqual([{ address: '100.64.0.5', port: 53 }]);
        await c.restore();
        expect(readFileSync(path, 'utf8')).toBe(original);
      }),
      { numRuns: 100 },
    );
    // Each run writes, renames and fsyncs the file four times: seconds of disk work on a busy
    // machine (CI ran out of the default 5 s with 200 runs). This bounds a hang, not a speed.
  }, 60_000);
});

describe('ResolvConfConfigurator, crashes and modes', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'trl-resolv2-'));
    path = join(dir, 'resolv.conf');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the file readable by everyone (its mode), managed and restored', async () => {
    writeFileSync(path, ORIGINAL);
    chmodSync(path, 0o644);
    const c = new ResolvConfConfigurator(path, dir, logger);
    await c.apply(SETTINGS);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    await c.restore();
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
  });

  it('a write cut short by a crash (an empty file, the start of its mark) is restored, never taken as the original', async () => {
    for (const cut of ['', MANAGED_MARK.slice(0, 7)]) {
      writeFileSync(path, ORIGINAL);
      await new ResolvConfConfigurator(path, dir, logger).apply(SETTINGS);
      writeFileSync(path, cut); // the crash
      const next = new ResolvConfConfigurator(path, dir, logger);
      expect((await next.upstreams()).map((u) => u.address)).toEqual(['10.0.0.53', '10.0.0.54']);
      await next.restore();
      expect(readFileSync(path, 'utf8')).toBe(ORIGINAL);
    }
  });

  it('keeps a link-local nameserver its scope, without which it cannot be reached', () => {
    expect(nameserversOf('nameserver fe80::1%eth0\nnameserver 2001:db8::53\n')).toEqual([
      { address: 'fe80::1%eth0', port: 53 },
      { address: '2001:db8::53', port: 53 },
    ]);
  });
});
