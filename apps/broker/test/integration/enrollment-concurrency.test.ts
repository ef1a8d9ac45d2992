import { generateKeyPair } from '@trellis/crypto';
import { eq, sql } from 'drizzle-orm';
import { SerialTracker } from '../../src/control/serial-tracker';
import { type Database, openDatabase } from '../../src/db/database';
import { accounts, devices, setupKeys } from '../../src/db/schema';
import type { BrokerEvent, EventBus } from '../../src/events/event-bus';
import type { EnrollInput } from '../../src/services/devices.service';
import { createServices, type Services } from '../../src/services/services';
import { BACKENDS, type Backend, createBackend } from '../support/backends';

jest.setTimeout(120_000);

/** Records what is published, in publish order (as a bus subscriber would see it). */
class RecordingBus implements EventBus {
  readonly events: BrokerEvent[] = [];
  async publish(event: BrokerEvent): Promise<void> {
    this.events.push(event);
  }
  subscribe(): () => void {
    return () => {};
  }
  onReconnected(): () => void {
    return () => {};
  }
  async close(): Promise<void> {}
}

describe.each(BACKENDS)('concurrent enrollments in one account on %s', (kind) => {
  let backend: Backend;
  let database: Database;
  let services: Services;
  let bus: RecordingBus;
  let accountId: string;
  let setupKey: string;

  beforeEach(async () => {
    backend = await createBackend(kind);
    database = await openDatabase(backend);
    bus = new RecordingBus();
    services = createServices(database.db, bus, {
      zone: 'trellis.internal',
      addressGraceSeconds: 3600,
      relayStaleAfterMs: 60_000,
    });
    const created = await services.accounts.create('acme', 'owner@acme.test', 'pw-owner-1234');
    accountId = created.account.id;
    setupKey = (await services.setupKeys.create(accountId, { name: 'fleet', reusable: true })).key;
  });
  afterEach(async () => {
    await database.close();
    await backend.dispose();
  });

  const input = (hostname: string, extra: Partial<EnrollInput> = {}): EnrollInput => ({
    setupKey,
    publicKey: generateKeyPair().publicKey,
    hostname,
    os: 'linux',
    endpoints: [],
    proven: false,
    ...extra,
  });

  /** The account's serial and device count, read in one statement (one snapshot). */
  async function snapshot(): Promise<{ serial: number; devices: number }> {
    const [row] = await database.db
      .select({
        serial: accounts.netmapSerial,
        devices: sql<number>`(select count(*)::int from ${devices} where ${devices.accountId} = ${accountId})`,
      })
      .from(accounts)
      .where(eq(accounts.id, accountId));
    return row!;
  }

  it('200 at once: unique addresses and names, one serial each, committed in serial order', async () => {
    const before = await snapshot();
    // Whatever a reader sees, the serial counts exactly the enrollments committed: no serial
    // commits before a lower one (a hub reloaded at serial S must have every change up to S).
    const seen: Array<{ serial: number; devices: number }> = [];
    let enrolling = true;
    const poller = (async () => {
      while (enrolling) seen.push(await snapshot());
    })();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => services.devices.enroll(input(`host-${i}`))),
    );
    enrolling = false;
    await poller;
    seen.push(await snapshot());

    expect(new Set(results.map((r) => r.address)).size).toBe(200);
    expect(new Set(results.map((r) => r.name)).size).toBe(200);
    expect(seen.length).toBeGreaterThan(1);
    for (const s of seen) expect(s.serial - before.serial).toBe(s.devices - before.devices);
    expect(seen.at(-1)).toEqual({ serial: before.serial + 200, devices: before.devices + 200 });

    // One event per enrollment, serials before+1..before+200; a hub takes every one of them.
    const upserts = bus.events.filter((e) => e.kind === 'device-upsert');
    expect(upserts).toHaveLength(200);
    const serials = upserts.map((e) => e.serial);
    expect([...serials].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 200 }, (_, i) => before.serial + 1 + i),
    );
    const tracker = new SerialTracker(before.serial);
    for (const e of upserts) {
      if (e.kind === 'device-upsert') expect(tracker.accept(e.serial, e.device.id)).toBe(true);
    }
    expect(tracker.watermark).toBe(before.serial + 200);
  });

  it('many under one name at once get distinct names (name, name-2, …)', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, () => services.devices.enroll(input('burst'))),
    );
    const names = new Set(results.map((r) => r.name));
    expect(names.size).toBe(40);
    expect(names).toContain('burst');
    for (const n of names) expect(n).toMatch(/^burst(-\d+)?$/);
  });

  it('re-enrollments among new enrollments keep their id and address', async () => {
    const first = await Promise.all(Array.from({ length: 50 }, (_, i) => input(`old-${i}`)));
    const enrolled = await Promise.all(first.map((f) => services.devices.enroll(f)));
    const again = first.map((f) =>
      services.devices.enroll({ ...f, proven: true, hostname: `${f.hostname}-x` }),
    );
    const fresh = Array.from({ length: 50 }, (_, i) => services.devices.enroll(input(`new-${i}`)));
    const [reenrolled, added] = await Promise.all([Promise.all(again), Promise.all(fresh)]);
    for (const [i, r] of reenrolled.entries()) {
      expect(r).toMatchObject({
        reenrolled: true,
        deviceId: enrolled[i]!.deviceId,
        address: enrolled[i]!.address,
        name: enrolled[i]!.name,
      });
    }
    const addresses = [...reenrolled, ...added].map((r) => r.address);
    expect(new Set(addresses).size).toBe(100);
  });

  it('the same new key twice at once: one device, the other request enrolls it again', async () => {
    const one = input('twin', { proven: true });
    const [a, b] = await Promise.all([services.devices.enroll(one), services.devices.enroll(one)]);
    expect(a.deviceId).toBe(b.deviceId);
    expect(a.address).toBe(b.address);
    expect([a.reenrolled, b.reenrolled].sort()).toEqual([false, true]);
  });

  it('a key with a usage limit admits exactly that many of a concurrent burst', async () => {
    const limited = await services.setupKeys.create(accountId, {
      name: 'five',
      reusable: true,
      usageLimit: 5,
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        services.devices.enroll(input(`l-${i}`, { setupKey: limited.key })),
      ),
    );
    const ok = outcomes.filter((o) => o.status === 'fulfilled');
    const refused = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    expect(ok).toHaveLength(5);
    for (const r of refused) expect(String(r.reason)).toMatch(/usage limit/);
    const [row] = await database.db.select().from(setupKeys).where(eq(setupKeys.id, limited.setupKey.id));
    expect(row!.usedCount).toBe(5);
    expect((await snapshot()).devices).toBe(5);
  });
});
