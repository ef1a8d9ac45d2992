import { API_PATHS, DnsSettings, ErrorBody } from '@trellis/proto';
import { askUdp } from '../../../../packages/dns/test/support/dns-client';
import { ZONE_RELOAD_MS } from '../../src/dns/zone-sync';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { HttpResult } from '../support/http-client';

jest.setTimeout(60_000);

const ZONE = 'mesh.test';
const DNS = API_PATHS.dns;

function expectError(res: HttpResult, status: number, message?: RegExp) {
  expect(res.status).toBe(status);
  const body = ErrorBody.parse(res.json);
  if (message) expect(body.message).toMatch(message);
}

/** The account's DNS over HTTP: read by everyone of the account, the switch flipped by admins. */
describe('DNS settings HTTP API', () => {
  let backend: Backend;
  let t: TestBroker;
  let memberToken: string;
  let adminToken: string;
  let other: { token: string; accountId: string };

  beforeAll(async () => {
    backend = await createBackend('pglite');
    t = await startTestBroker(backend, { zone: ZONE, dns: { host: '127.0.0.1', port: 0, rateLimit: 0 } });
    memberToken = await t.addMember('member@dns.test');
    const account = await t.broker.services.accounts.byName('default');
    await t.broker.services.users.create(account.id, 'admin@dns.test', 'admin', 'pw-admin-1234');
    const login = await t.api('POST', API_PATHS.login, {
      body: { email: 'admin@dns.test', password: 'pw-admin-1234' },
    });
    adminToken = login.json.token as string;
    other = await t.addAccount('acme');
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('every user of the account reads the zone and the switch; another account reads its own', async () => {
    for (const token of [t.ownerToken, adminToken, memberToken]) {
      const res = await t.api('GET', DNS, { token });
      expect(res.status).toBe(200);
      expect(DnsSettings.parse(res.json)).toEqual({
        account: 'default',
        zone: ZONE,
        accountZone: `default.${ZONE}`,
        meshOnly: false,
      });
    }
    const theirs = DnsSettings.parse((await t.api('GET', DNS, { token: other.token })).json);
    expect(theirs).toMatchObject({ account: 'acme', accountZone: `acme.${ZONE}` });
    expectError(await t.api('GET', DNS), 401);
  });

  it('the switch takes effect for DNS at once: a query from outside the mesh is refused, then answered again', async () => {
    const enrolled = await t.device().enroll(t.setupKey, { name: 'nas', endpoints: ['198.51.100.7:51820'] });
    const name = `nas.default.${ZONE}`;
    const port = t.broker.dnsPort!;
    expect((await askUdp(port, name)).answers).toEqual([
      expect.objectContaining({ type: 'A', data: enrolled.address }),
    ]);

    const on = await t.api('PUT', DNS, { token: adminToken, body: { meshOnly: true } });
    expect(on.status).toBe(200);
    expect(DnsSettings.parse(on.json).meshOnly).toBe(true);
    // No wait for the 5 s reload: 127.0.0.1 is none of the account's addresses, so refused now.
    expect((await askUdp(port, name)).rcode).toBe(5);
    expect(DnsSettings.parse((await t.api('GET', DNS, { token: memberToken })).json).meshOnly).toBe(true);
    expect((await t.broker.services.accounts.byName('default')).dnsMeshOnly).toBe(true);
    // Who flipped it, and from where, is in the account's audit log.
    const account = await t.broker.services.accounts.byName('default');
    const audit = await t.broker.services.audit.page(account.id, { limit: 5, action: 'account.dns-changed' });
    expect(audit.events[0]).toMatchObject({
      actor: { email: 'admin@dns.test', address: '127.0.0.1' },
      details: { meshOnly: true },
    });

    const off = await t.api('PUT', DNS, { token: t.ownerToken, body: { meshOnly: false } });
    expect(DnsSettings.parse(off.json).meshOnly).toBe(false);
    expect((await askUdp(port, name)).answers?.[0]).toMatchObject({ data: enrolled.address });
  });

  it('a member may not flip the switch; another account flips only its own', async () => {
    expectError(
      await t.api('PUT', DNS, { token: memberToken, body: { meshOnly: true } }),
      403,
      /owner or admin/,
    );
    const theirs = await t.api('PUT', DNS, { token: other.token, body: { meshOnly: true } });
    expect(DnsSettings.parse(theirs.json)).toMatchObject({ account: 'acme', meshOnly: true });
    expect((await t.broker.services.accounts.byName('default')).dnsMeshOnly).toBe(false);
    expect((await t.broker.services.accounts.byId(other.accountId)).dnsMeshOnly).toBe(true);
  });

  it('refuses bad input with 400 and changes nothing', async () => {
    for (const body of [{}, { meshOnly: 'yes' }, { meshOnly: true, zone: 'evil.test' }, [true], null]) {
      expectError(await t.api('PUT', DNS, { token: adminToken, body }), 400);
    }
    expectError(await t.api('PUT', DNS, { token: adminToken, raw: '{"meshOnly":', headers: {} }), 400);
    expect((await t.broker.services.accounts.byName('default')).dnsMeshOnly).toBe(false);
  });
});

/** Two instances on one PostgreSQL: the switch flipped through one reaches the other's DNS over the bus. */
describe('DNS settings across instances', () => {
  let backend: Backend;
  let one: TestBroker;
  let two: TestBroker;

  beforeAll(async () => {
    backend = await createBackend('postgres');
    const dns = { host: '127.0.0.1', port: 0, rateLimit: 0 };
    one = await startTestBroker(backend, { zone: ZONE, dns });
    two = await startTestBroker({ ...backend, dataDir: tempDir() }, { zone: ZONE, dns });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await backend?.dispose();
  });

  it('the other instance refuses at once, well before its reload would have found it', async () => {
    await one.device().enroll(one.setupKey, { name: 'cam', endpoints: ['198.51.100.9:51820'] });
    const name = `cam.default.${ZONE}`;
    await until(async () => (await askUdp(two.broker.dnsPort!, name)).answers?.length === 1, 15_000);
    const started = Date.now();
    const res = await one.api('PUT', DNS, { token: one.ownerToken, body: { meshOnly: true } });
    expect(res.status).toBe(200);
    await until(async () => (await askUdp(two.broker.dnsPort!, name)).rcode === 5, ZONE_RELOAD_MS / 2);
    expect(Date.now() - started).toBeLessThan(ZONE_RELOAD_MS / 2);
  });
});

/** Polls until `ok` holds; fails after `deadlineMs`. */
async function until(ok: () => Promise<boolean>, deadlineMs: number): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`not within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
