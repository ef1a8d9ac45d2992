import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

jest.setTimeout(60_000);

const run = promisify(execFile);
const ZONE = 'lab.test';

/** The broker's DNS server as a real client sees it: BIND's `dig`, over UDP and TCP. */
describe('the DNS server, asked with dig', () => {
  let backend: Backend;
  let t: TestBroker;
  let address: string;
  let accountId: string;

  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { zone: ZONE, dns: { host: '127.0.0.1', port: 0, ttlSeconds: 20 } });
    const enrolled = await t.device().enroll(t.setupKey, { name: 'laptop' });
    address = enrolled.address;
    accountId = enrolled.accountId;
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  const dig = async (...args: string[]) => {
    const { stdout } = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(t.broker.dnsPort),
      '+tries=1',
      '+time=2',
      ...args,
    ]);
    return stdout;
  };
  const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
  const flags = (out: string) => /;; flags: ([^;]*);/.exec(out)?.[1]?.trim().split(' ') ?? [];

  it('A, authoritative, over UDP and TCP', async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const out = await dig(transport, `laptop.default.${ZONE}`, 'A');
      expect(status(out)).toBe('NOERROR');
      expect(flags(out)).toContain('aa');
      expect(flags(out)).not.toContain('ra');
      expect(out).toMatch(
        new RegExp(
          `^laptop\\.default\\.lab\\.test\\.\\s+20\\s+IN\\s+A\\s+${address.replace(/\./g, '\\.')}$`,
          'm',
        ),
      );
    }
  });

  it('SOA and NS; NXDOMAIN with the SOA; NODATA; REFUSED outside the zone', async () => {
    expect(await dig('+short', `default.${ZONE}`, 'SOA')).toMatch(
      /^localhost\. hostmaster\.lab\.test\. \d+ 3600 600 86400 20$/m,
    );
    expect((await dig('+short', ZONE, 'NS')).trim()).toBe('localhost.');
    const nx = await dig(`nobody.default.${ZONE}`, 'A');
    expect(status(nx)).toBe('NXDOMAIN');
    expect(nx).toMatch(/AUTHORITY SECTION:\ndefault\.lab\.test\.\s+20\s+IN\s+SOA/);
    const nodata = await dig(`laptop.default.${ZONE}`, 'AAAA');
    expect(status(nodata)).toBe('NOERROR');
    expect(nodata).toContain('ANSWER: 0');
    expect(status(await dig('example.com', 'A'))).toBe('REFUSED');
  });

  it('EDNS(0) with its buffer size; another EDNS version gets BADVERS', async () => {
    const out = await dig('+edns=0', '+bufsize=4096', `laptop.default.${ZONE}`, 'A');
    expect(out).toMatch(/EDNS: version: 0, flags:; udp: 1232/);
    const v1 = await dig('+edns=1', '+noednsnegotiation', `laptop.default.${ZONE}`, 'A');
    expect(status(v1)).toBe('BADVERS');
  });

  it('a rename is answered under the new name', async () => {
    await t.broker.services.devices.rename(accountId, 'default', 'laptop', 'notebook');
    const started = Date.now();
    for (;;) {
      const out = await dig('+short', `notebook.default.${ZONE}`, 'A');
      if (out.trim() === address) break;
      if (Date.now() - started > 10_000) throw new Error('the new name was never answered');
      await new Promise((r) => setTimeout(r, 20));
    }
    process.stdout.write(`\ndns: a rename answered ${Date.now() - started} ms after it committed\n`);
    expect(status(await dig(`laptop.default.${ZONE}`, 'A'))).toBe('NXDOMAIN');
  });
});
