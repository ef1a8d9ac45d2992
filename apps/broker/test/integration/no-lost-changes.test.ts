import { generateKeyPair } from '@trellis/crypto';
import { DEFAULT_POLICY_TEXT } from '@trellis/policy';
import { API_PATHS, CloseCode } from '@trellis/proto';
import { openDatabase } from '../../src/db/database';
import { NullEventBus } from '../../src/events/event-bus';
import { createServices } from '../../src/services/services';
import { tempDir } from '../support/backends';
import { LogSink, startTestBroker, type TestBroker } from '../support/fixture';
import { type PrivatePostgres, startPrivatePostgres } from '../support/private-postgres';
import { type TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(120_000);

/**
 * A committed change reaches every connected device: across a PostgreSQL restart (the bus's
 * connections break), and when the instance that made it never published it (it died between
 * its commit and its publish: here a writer whose bus publishes nothing).
 */
describe('no lost changes (PostgreSQL)', () => {
  let pg: PrivatePostgres;
  let t: TestBroker;
  const logs = new LogSink();
  const devices: TestDevice[] = [];

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    t = await startTestBroker(
      { name: 'postgres', dataDir: tempDir(), databaseUrl: pg.url, dispose: async () => {} },
      {},
      logs,
    );
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    pg?.stop();
  });

  async function connected(name: string): Promise<TestDevice> {
    const d = t.device();
    devices.push(d);
    await d.enroll(t.setupKey, { hostname: name });
    await d.connect();
    return d;
  }

  it('after PostgreSQL restarts: a removal answers 200, closes the removed device and reaches its peers; an enrollment reaches them', async () => {
    const victim = await connected('victim');
    const peer = await connected('peer');
    await peer.waitForPeers((p) => p.has(victim.id));

    pg.restart();
    const res = await t.api('DELETE', `${API_PATHS.devices}/${victim.id}`, { token: t.ownerToken });
    expect(res.status).toBe(200);
    expect(await victim.waitForClose()).toBe(CloseCode.deviceRemoved);
    await peer.waitForPeers((p) => !p.has(victim.id));

    const late = t.device();
    devices.push(late);
    await late.enroll(t.setupKey, { hostname: 'late' });
    await peer.waitForPeers((p) => p.has(late.id));

    // The bus listens again: the account was reloaded and its pair paths owner told again.
    const resynced = await waitUntil(
      () => logs.lines.find((l) => l.msg === 'event bus back: pair paths owners told again'),
      60_000,
      'the pair paths resync after the bus came back',
    );
    expect(resynced.accounts).toBeGreaterThanOrEqual(1);
  });

  it('a change committed but never published (its instance died in between) still reaches every device', async () => {
    const a = await connected('a');
    const b = await connected('b');
    const gone = await connected('gone');
    await a.waitForPeers((p) => p.has(b.id) && p.has(gone.id));
    // Another writer on the same database whose publishes go nowhere.
    const database = await openDatabase({ dataDir: tempDir(), databaseUrl: pg.url });
    try {
      const services = createServices(database.db, new NullEventBus(), {
        zone: 'trellis.test',
        addressGraceSeconds: 0,
        relayStaleAfterMs: 45_000,
      });
      const account = await services.accounts.byName('default');
      await services.devices.remove(account.id, account.name, gone.id);
      const added = await services.devices.enroll({
        setupKey: t.setupKey,
        publicKey: generateKeyPair().publicKey,
        hostname: 'unannounced',
        os: 'linux',
        endpoints: [],
        proven: false,
      });
      await services.devices.setEndpoints(b.id, ['192.0.2.77:51820']);
      // Within three serial checks (2 s each) every connected device has all three changes.
      await a.waitForPeers(
        (p) =>
          !p.has(gone.id) &&
          p.has(added.deviceId) &&
          p.get(b.id)?.endpoints.includes('192.0.2.77:51820') === true,
      );
      await b.waitForPeers((p) => !p.has(gone.id) && p.has(added.deviceId));
      expect(await gone.waitForClose()).toBe(CloseCode.deviceRemoved);
      expect(logs.lines.some((l) => l.msg === 'account netmaps reloaded')).toBe(true);
      // A policy applied the same way (nobody may reach anybody) reaches them too.
      await services.policy.apply(account.id, '{ "rules": [] }', 'unannounced@default.test');
      await a.waitForPeers((p) => p.size === 0);
      await b.waitForPeers((p) => p.size === 0);
      await services.policy.apply(account.id, DEFAULT_POLICY_TEXT, 'unannounced@default.test');
      await a.waitForPeers((p) => p.has(b.id));
    } finally {
      await database.close();
    }
  });
});
