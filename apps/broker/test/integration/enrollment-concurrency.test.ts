import { generateKeyPair } from '@trellis/crypto';
import { eq, inArray, sql } from 'drizzle-orm';
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

  /**
   * Enrolls `n` at once (hostnames `prefix-i`) while snapshots are read over and over: what every
   * reader saw, the last snapshot after all committed.
   */
  async function enrollWatched(n: number, prefix: string) {
    const seen: Array<{ serial: number; devices: number }> = [];
    let enrolling = true;
    const poller = (async () => {
      while (enrolling) seen.push(await snapshot());
    })();
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => services.devices.enroll(input(`${prefix}-${i}`))),
    );
    enrolling = false;
    await poller;
    seen.push(await snapshot());
    return { results, seen };
  }

  it('200 at once: unique addresses and names, one serial each, committed in serial order', async () => {
    const before = await snapshot();
    // Whatever a reader sees, the serial counts exactly the enrollments committed: no serial
    // commits before a lower one (a hub reloaded at serial S must have every change up to S).
    const { results, seen } = await enrollWatched(200, 'host');

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

  /** The transaction that wrote each device's row (its xmin), by device id. */
  async function writtenBy(ids: string[]): Promise<Map<string, string>> {
    const rows = await database.db
      .select({ id: devices.id, tx: sql<string>`${devices}.xmin::text` })
      .from(devices)
      .where(inArray(devices.id, ids));
    return new Map(rows.map((r) => [r.id, r.tx]));
  }

  it('group commit: arrivals during a batch commit together, each with its own consecutive serial', async () => {
    const before = await snapshot();
    const { results, seen } = await enrollWatched(60, 'g');
    expect(new Set(results.map((r) => r.address)).size).toBe(60);
    // Whatever a reader saw, the serial counted exactly the devices committed (commit order).
    for (const s of seen) expect(s.serial - before.serial).toBe(s.devices - before.devices);

    const upserts = bus.events.flatMap((e) => (e.kind === 'device-upsert' ? [e] : []));
    expect(upserts.map((e) => e.device.id).sort()).toEqual(results.map((r) => r.deviceId).sort());
    const serialOf = new Map(upserts.map((e) => [e.device.id, e.serial]));
    const txOf = await writtenBy(results.map((r) => r.deviceId));
    // Fewer transactions than devices: the first went alone, the rest waited for it and went together.
    const batches = new Map<string, number[]>();
    for (const r of results)
      batches.set(txOf.get(r.deviceId)!, [
        ...(batches.get(txOf.get(r.deviceId)!) ?? []),
        serialOf.get(r.deviceId)!,
      ]);
    expect(batches.size).toBeLessThan(60);
    // Each transaction's serials are a gap-free run, and the runs tile before+1..before+60.
    const runs = [...batches.values()].map((s) => s.sort((a, b) => a - b)).sort((a, b) => a[0]! - b[0]!);
    let next = before.serial + 1;
    for (const run of runs) {
      expect(run).toEqual(Array.from({ length: run.length }, (_, i) => next + i));
      next += run.length;
    }
    expect(next).toBe(before.serial + 61);
  });

  it('a batch admits exactly the uses a key has left, in arrival order', async () => {
    const limited = await services.setupKeys.create(accountId, {
      name: 'ten',
      reusable: true,
      usageLimit: 10,
    });
    for (let i = 0; i < 3; i++) await services.devices.enroll(input(`early-${i}`, { setupKey: limited.key }));
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        services.devices.enroll(input(`k-${i}`, { setupKey: limited.key })),
      ),
    );
    const admitted = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
    expect(admitted).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const o of outcomes.slice(7)) {
      expect(o.status).toBe('rejected');
      expect(String((o as PromiseRejectedResult).reason)).toMatch(/usage limit/);
    }
    const [row] = await database.db.select().from(setupKeys).where(eq(setupKeys.id, limited.setupKey.id));
    expect(row!.usedCount).toBe(10);
  });

  it('a bad request in a batch fails alone, with the error it would get alone', async () => {
    const other = await services.accounts.create('other', 'owner@other.test', 'pw-owner-1234');
    const otherKey = (await services.setupKeys.create(other.account.id, { name: 'k', reusable: true })).key;
    const elsewhere = input('elsewhere', { setupKey: otherKey });
    await services.devices.enroll(elsewhere);
    const known = input('known');
    const knownDevice = await services.devices.enroll(known);
    const revoked = await services.setupKeys.create(accountId, { name: 'gone', reusable: true });
    await services.setupKeys.revoke(accountId, revoked.setupKey.id);
    const good = Array.from({ length: 10 }, (_, i) => input(`ok-${i}`));
    const bad = [
      { ...input('stranger'), setupKey: 'tsk_not-a-key' },
      { ...elsewhere, setupKey },
      { ...known, hostname: 'spoofed' },
      input('revoked', { setupKey: revoked.key }),
    ];
    // The bad ones among the good ones, all in flight at once.
    const [first, ...rest] = good;
    const outcomes = await Promise.allSettled(
      [first!, bad[0]!, ...rest.slice(0, 4), bad[1]!, bad[2]!, ...rest.slice(4), bad[3]!].map((r) =>
        services.devices.enroll(r),
      ),
    );
    const reasons = outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : []));
    expect(reasons).toHaveLength(4);
    expect(reasons[0]).toMatch(/unknown setup key/);
    expect(reasons[1]).toMatch(/already enrolled in another account/);
    expect(reasons[2]).toMatch(/needs proof of its private key/);
    expect(reasons[3]).toMatch(/revoked/);
    const ok = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    expect(ok.map((r) => r.name).sort()).toEqual(good.map((g) => g.hostname).sort());
    const txOf = await writtenBy(ok.map((r) => r.deviceId));
    expect(new Set(txOf.values()).size).toBeLessThan(ok.length);
    // The refused re-enrollment changed nothing.
    const [row] = await database.db.select().from(devices).where(eq(devices.id, knownDevice.deviceId));
    expect(row!.hostname).toBe('known');
  });
});
