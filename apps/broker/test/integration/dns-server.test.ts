import { askTcp, askUdp } from '../../../../packages/dns/test/support/dns-client';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';

/** Polls until `ok` holds (the deadline only stops a broken run). */
async function eventually(what: string, ok: () => Promise<boolean>, deadlineMs = 15_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

jest.setTimeout(60_000);

const ZONE = 'mesh.test';

/** Two instances on one PostgreSQL, each with its DNS server: both answer every account's names. */
describe('the authoritative DNS server', () => {
  let backend: Backend;
  let one: TestBroker;
  let two: TestBroker;
  const dnsOf = (t: TestBroker) => t.broker.dnsPort!;

  beforeAll(async () => {
    backend = await createBackend('postgres');
    const dns = { host: '127.0.0.1', port: 0, ttlSeconds: 5, nameServers: ['ns1.mesh.test'] };
    one = await startTestBroker(backend, { zone: ZONE, dns });
    two = await startTestBroker({ ...backend, dataDir: tempDir() }, { zone: ZONE, dns });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await backend?.dispose();
  });

  it('answers a new device on every instance (from the bus), over UDP and TCP, and forgets a removed one', async () => {
    const device = one.device();
    const enrolled = await device.enroll(one.setupKey, { name: 'laptop' });
    const name = `laptop.default.${ZONE}`;
    for (const instance of [one, two]) {
      await eventually(name, async () => (await askUdp(dnsOf(instance), name)).answers?.length === 1);
    }
    const udp = await askUdp(dnsOf(two), name);
    expect(udp.answers).toEqual([expect.objectContaining({ type: 'A', ttl: 5, data: enrolled.address })]);
    const [a, soa, ns, nx] = await askTcp(dnsOf(one), [
      [name, 'A'],
      [`default.${ZONE}`, 'SOA'],
      [ZONE, 'NS'],
      [`nobody.default.${ZONE}`, 'A'],
    ]);
    expect(a!.answers?.[0]).toMatchObject({ data: enrolled.address });
    expect(soa!.answers?.[0]).toMatchObject({ type: 'SOA', data: { mname: 'ns1.mesh.test' } });
    expect(ns!.answers?.map((r) => (r as { data: string }).data)).toEqual(['ns1.mesh.test']);
    expect(nx!.rcode).toBe(3);
    expect((await askUdp(dnsOf(one), 'example.com')).rcode).toBe(5);

    // The SOA serial moves with the account's changes.
    const serialOf = (r: { answers?: unknown[] }) =>
      (r.answers?.[0] as { data: { serial: number } } | undefined)?.data.serial ?? -1;
    const serialBefore = serialOf(soa!);
    await two.broker.services.devices.remove(enrolled.accountId, 'default', enrolled.deviceId);
    for (const instance of [one, two]) {
      await eventually(`${name} gone`, async () => (await askUdp(dnsOf(instance), name)).rcode === 3);
    }
    const after = await askUdp(dnsOf(one), `default.${ZONE}`, 'SOA');
    expect(serialOf(after)).toBeGreaterThan(serialBefore);
  });

  it('a rename is answered under the new name on every instance; the old one is gone', async () => {
    const d = one.device();
    const enrolled = await d.enroll(one.setupKey, { name: 'printer' });
    const old = `printer.default.${ZONE}`;
    await eventually(old, async () => (await askUdp(dnsOf(two), old)).answers?.length === 1);
    const info = await one.broker.services.devices.rename(
      enrolled.accountId,
      'default',
      'printer',
      'plotter',
    );
    expect(info).toMatchObject({ name: 'plotter', dnsName: `plotter.default.${ZONE}` });
    for (const instance of [one, two]) {
      await eventually('the new name', async () => {
        const now = await askUdp(dnsOf(instance), `Plotter.default.${ZONE}`);
        return (
          now.answers?.[0] !== undefined && (now.answers[0] as { data: string }).data === enrolled.address
        );
      });
      expect((await askUdp(dnsOf(instance), old)).rcode).toBe(3);
    }
    // Names are DNS labels and unique in the account.
    const other = await one.device().enroll(one.setupKey, { name: 'scanner' });
    await expect(
      one.broker.services.devices.rename(other.accountId, 'default', 'scanner', 'plotter'),
    ).rejects.toThrow(/already in account default/);
    await expect(
      one.broker.services.devices.rename(other.accountId, 'default', 'scanner', 'Not_A_Label'),
    ).rejects.toThrow(/must be a DNS label/);
  });

  it('a new account and the mesh-only switch reach every instance with its reload', async () => {
    const created = await one.addAccount('acme');
    const d = one.device();
    await d.enroll(created.setupKey, { name: 'db', endpoints: ['198.51.100.20:51820'] });
    const name = `db.acme.${ZONE}`;
    await eventually(name, async () => (await askUdp(dnsOf(two), name)).answers?.length === 1);
    await one.broker.services.accounts.setDnsMeshOnly('acme', true);
    const [row] = await one.broker.services.accounts.list().then((l) => l.filter((a) => a.name === 'acme'));
    expect(row?.dnsMeshOnly).toBe(true);
    // Asked from 127.0.0.1, not one of the account's addresses: refused, on both instances.
    for (const instance of [one, two]) {
      await eventually(`${name} refused`, async () => (await askUdp(dnsOf(instance), name)).rcode === 5);
    }
    expect((await askUdp(dnsOf(one), `laptop.nosuch.${ZONE}`)).rcode).toBe(3);
  });

  it('counts what it answered, by transport, in its metrics', async () => {
    const count = async (t: TestBroker, transport: string) => {
      const text = await t.broker.metrics.registry.metrics();
      const m = new RegExp(`^trellis_dns_queries_total\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(
        text,
      );
      return Number(m?.[1] ?? 0);
    };
    const [udp, tcp] = [await count(two, 'udp'), await count(two, 'tcp')];
    for (let i = 0; i < 5; i++) await askUdp(dnsOf(two), `x${i}.default.${ZONE}`);
    await askTcp(dnsOf(two), [
      [ZONE, 'SOA'],
      [ZONE, 'NS'],
    ]);
    expect(await count(two, 'udp')).toBe(udp + 5);
    expect(await count(two, 'tcp')).toBe(tcp + 2);
  });
});
