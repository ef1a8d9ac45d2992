import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { eq, sql } from 'drizzle-orm';
import { brokerInstances, devices } from '../../src/db/schema';
import { DEFAULT_OFFLINE_GRACE_MS } from '../../src/defaults';
import { LEASE_LOST_CLOSE_CODE } from '../../src/instances/instance-leases';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker } from '../support/fixture';
import { counterValue, logLines } from '../support/lease-world';
import { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

type TestBroker = Awaited<ReturnType<typeof startTestBroker>>;

/** Timers that never fire within a test: rounds are driven with leases.tick(). */
const HAND_DRIVEN = {
  instanceRenewMs: 3_600_000,
  instanceLeaseMs: 7_200_000,
  offlineGraceMs: DEFAULT_OFFLINE_GRACE_MS,
};

/** Two brokers on one Postgres: one "dies" (its lease runs out), the other takes its devices offline. */
describe('broker instance failover on postgres', () => {
  let backend: Backend;
  let one: TestBroker;
  let two: TestBroker;

  /** The lease ran out `seconds` ago. */
  const expire = (b: TestBroker, seconds: number) =>
    b.broker.services.db
      .update(brokerInstances)
      .set({ expiresAt: sql`now() - make_interval(secs => ${seconds})` })
      .where(eq(brokerInstances.id, b.broker.instanceId));

  beforeAll(async () => {
    backend = await createBackend('postgres');
    one = await startTestBroker(backend, HAND_DRIVEN);
    two = await startTestBroker({ ...backend, dataDir: tempDir() }, HAND_DRIVEN);
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await backend?.dispose();
  });

  it('lists both instances', async () => {
    const ids = (await one.broker.services.instances.list()).map((i) => [i.id, i.url, i.live]);
    expect(ids.sort()).toEqual(
      [
        [one.broker.instanceId, one.broker.url, true],
        [two.broker.instanceId, two.broker.url, true],
      ].sort(),
    );
    const listed = await cli(['instances', 'list', '--data-dir', backend.dataDir]);
    expect(listed.code).toBe(0);
    expect(listed.out).toMatch(/^ID\s+URL\s+VERSION\s+STARTED\s+LEASE EXPIRES\s+LIVE/);
    expect(listed.out).toContain(one.broker.instanceId);
    expect(listed.out).toContain(two.broker.instanceId);
  });

  it("a dead instance's devices go offline for the others; once it is back its devices are told to reconnect", async () => {
    const a = one.device();
    await a.enroll(one.setupKey, { hostname: 'on-one' });
    const b = two.device();
    await b.enroll(one.setupKey, { hostname: 'on-two' });
    await a.connect();
    await b.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true);

    // Instance one stops renewing (paused, partitioned). Within the offline grace its devices may
    // still reconnect elsewhere: nothing is taken over yet.
    await expire(one, 1);
    await two.broker.leases.tick();
    expect(await counterValue(two.broker.metrics.instanceTakeovers)).toBe(0);
    expect(b.peers.get(a.id)?.online).toBe(true);
    // Past lease and grace, instance two takes it over.
    await expire(one, DEFAULT_OFFLINE_GRACE_MS / 1000 + 1);
    await two.broker.leases.tick();
    await b.waitForPeers((p) => p.get(a.id)?.online === false);
    expect(await counterValue(two.broker.metrics.instanceTakeovers)).toBe(1);
    expect(logLines(two.logs, 'instance taken over')).toEqual([
      expect.objectContaining({ deadInstanceId: one.broker.instanceId, devices: 1 }),
    ]);

    // Instance one comes back: its next renew finds the lease gone and closes a's connection.
    await one.broker.leases.tick();
    expect(await a.waitForClose()).toBe(LEASE_LOST_CLOSE_CODE);
    expect(await counterValue(one.broker.metrics.instanceLeaseLost)).toBe(1);
    const back = (await one.broker.services.instances.list()).find((i) => i.id === one.broker.instanceId);
    expect(back?.live).toBe(true);

    // a reconnects, to the other instance, and is online again for b.
    const aOnTwo = new TestDevice(two.broker.url, two.broker.certFile, a.keys);
    aOnTwo.enrollment = a.enrollment;
    await aOnTwo.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    aOnTwo.close();
    b.close();
  });

  it("clean shutdown removes the instance's lease; a third instance sees only the live one", async () => {
    const three = await startTestBroker({ ...backend, dataDir: tempDir() }, HAND_DRIVEN);
    const c = three.device();
    await c.enroll(one.setupKey, { hostname: 'on-three' });
    await c.connect();
    const threeId = three.broker.instanceId;
    expect((await one.broker.services.instances.list()).map((i) => i.id)).toContain(threeId);

    await three.close();

    expect((await one.broker.services.instances.list()).map((i) => i.id)).not.toContain(threeId);
    const [row] = await one.broker.services.db.select().from(devices).where(eq(devices.id, c.id));
    expect(row!.connectionId).toBeNull();
  });
});

/** The embedded database has one broker: whatever a crashed run left is cleared at start. */
describe('instance lease on pglite', () => {
  it('a restart clears the leases and connections a crashed run left behind', async () => {
    const backend = await createBackend('pglite');
    const first = await startTestBroker(backend, HAND_DRIVEN);
    const enrolled = await first.broker.services.devices.enroll({
      setupKey: first.setupKey,
      publicKey: generateKeyPair().publicKey,
      hostname: 'left-online',
      os: 'linux',
      endpoints: [],
      proven: false,
    });
    // What a run killed with SIGKILL leaves: its lease and a device it held online (a clean close
    // of this run touches neither: they are not its own).
    const crashed = 'c0ffee000001';
    const db = first.broker.services.db;
    await db
      .insert(brokerInstances)
      .values({ id: crashed, url: 'https://old', version: 'old', expiresAt: sql`now() + interval '1 hour'` });
    await db
      .update(devices)
      .set({ connectionId: `${crashed}:${randomUUID()}` })
      .where(eq(devices.id, enrolled.deviceId));
    await first.close();

    const second = await startTestBroker(backend, HAND_DRIVEN);
    try {
      const listed = await second.broker.services.instances.list();
      expect(listed.map((i) => i.id)).toEqual([second.broker.instanceId]);
      const [row] = await second.broker.services.db
        .select()
        .from(devices)
        .where(eq(devices.id, enrolled.deviceId));
      expect(row!.connectionId).toBeNull();
      expect(await counterValue(second.broker.metrics.instancesLive)).toBe(1);
    } finally {
      await second.close();
      await backend.dispose();
    }
  });
});
