import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DarwinServiceDns } from '../../src/platform/darwin-service-dns';
import { DarwinResolverConfigurator, selectDarwinResolver } from '../../src/platform/resolver-darwin';
import { FakeDarwin } from './fake-darwin';
import { expectGolden, lines } from './golden';

const logger = pino({ level: 'silent' });
const settings = { interfaceName: 'trellis0', server: '100.64.0.1', domain: 'acme.ts.example' };

function setup() {
  const root = mkdtempSync(join(tmpdir(), 'trl-resolver-'));
  const dir = join(root, 'resolver');
  const stateDir = join(root, 'state');
  mkdirSync(dir);
  mkdirSync(stateDir);
  // Another program's split DNS (a corporate VPN): never touched.
  writeFileSync(join(dir, 'corp.example'), 'nameserver 10.0.0.53\n');
  const fake = new FakeDarwin();
  const resolver = new DarwinResolverConfigurator(new DarwinServiceDns(fake, stateDir, logger), logger, dir);
  return { dir, stateDir, fake, resolver };
}

describe('DarwinResolverConfigurator (/etc/resolver files, networksetup on a recorded fake)', () => {
  it('split DNS: one marked file for the domain; again: unchanged; other files untouched', async () => {
    const { dir, fake, resolver } = setup();
    await resolver.apply(settings);
    expectGolden('resolver-acme.ts.example', readFileSync(join(dir, 'acme.ts.example'), 'utf8'));
    await resolver.apply({ ...settings, domain: 'ACME.ts.example.' });
    expect(readdirSync(dir).sort()).toEqual(['acme.ts.example', 'corp.example']);
    expect(fake.changes).toEqual([]); // no exit node: network services are left alone
    expect(await resolver.upstreams()).toEqual([]);
  });

  it('a domain change removes the old file; down removes ours only', async () => {
    const { dir, resolver } = setup();
    await resolver.apply(settings);
    await resolver.apply({ ...settings, domain: 'acme2.ts.example' });
    expect(readdirSync(dir).sort()).toEqual(['acme2.ts.example', 'corp.example']);
    await resolver.restore();
    expect(readdirSync(dir)).toEqual(['corp.example']);
    await resolver.restore();
  });

  it('exit node: every service’s DNS to the stub, originals saved first and put back after', async () => {
    const { stateDir, fake, resolver } = setup();
    await resolver.apply({ ...settings, defaultRoute: true });
    expect(fake.services.get('Wi-Fi')).toEqual(['100.64.0.1']);
    expectGolden(
      'resolver-exit-backup.json',
      readFileSync(join(stateDir, 'darwin-dns-services.json'), 'utf8'),
    );
    await resolver.apply({ ...settings, defaultRoute: true });
    await resolver.apply(settings); // exit node no longer used
    expectGolden('resolver-exit.txt', lines(fake.changes));
    expect([...fake.services]).toEqual([
      ['Wi-Fi', []],
      ['USB 10/100/1000 LAN', ['9.9.9.9', '149.112.112.112']],
    ]);
    expect(existsSync(join(stateDir, 'darwin-dns-services.json'))).toBe(false);
  });

  it('crash recovery: recover() removes a dead run’s files and puts the services back', async () => {
    const { dir, stateDir, fake, resolver } = setup();
    await resolver.apply({ ...settings, defaultRoute: true });
    // The user changed one service meanwhile: theirs is newer than our copy.
    fake.services.set('USB 10/100/1000 LAN', ['1.1.1.1']);
    const choice = selectDarwinResolver('stub', stateDir, fake, logger, dir);
    expect(choice.resolver).toBeNull();
    await choice.recover('trellis0');
    expect(readdirSync(dir)).toEqual(['corp.example']);
    expect(fake.services.get('Wi-Fi')).toEqual([]);
    expect(fake.services.get('USB 10/100/1000 LAN')).toEqual(['1.1.1.1']);
  });

  it('never overwrites a file it did not write, and refuses names that are not domains', async () => {
    const { dir, resolver } = setup();
    writeFileSync(join(dir, 'acme.ts.example'), 'nameserver 10.9.9.9\n');
    await expect(resolver.apply(settings)).rejects.toThrow(/not written by trellisd/);
    expect(readFileSync(join(dir, 'acme.ts.example'), 'utf8')).toBe('nameserver 10.9.9.9\n');
    await expect(resolver.apply({ ...settings, domain: '../etc/hosts' })).rejects.toThrow(
      /not a domain name/,
    );
  });

  it('--dns: auto is the resolver directory, the Linux modes are refused', () => {
    const { dir, stateDir, fake } = setup();
    expect(selectDarwinResolver('auto', stateDir, fake, logger, dir).resolver?.kind).toBe('resolver-dir');
    expect(selectDarwinResolver('off', stateDir, fake, logger, dir).resolver).toBeNull();
    expect(() => selectDarwinResolver('resolved', stateDir, fake, logger, dir)).toThrow(/for Linux/);
  });
});
