import { randomUUID } from 'node:crypto';
import { BROKER_EVENT_VERSION, type BrokerEvent, encodeBrokerEvent } from '@trellis/proto';
import { Client } from 'pg';
import pino from 'pino';
import { NOTIFY_CHANNEL, PgNotifyEventBus } from '../../src/events/pg-notify-bus';
import { BrokerMetrics } from '../../src/metrics';
import { createPostgresDatabase } from '../support/backends';
import { deviceState } from '../support/device-state';
import { LogSink } from '../support/fixture';
import { waitUntil } from '../support/test-device';

jest.setTimeout(30_000);

/** The real PostgreSQL bus: whatever arrives on its channel, only valid events reach the handlers. */
describe('PgNotifyEventBus on PostgreSQL', () => {
  let db: { url: string; drop(): Promise<void> };
  let bus: PgNotifyEventBus;
  let raw: Client;
  let metrics: BrokerMetrics;
  let logs: LogSink;
  let received: BrokerEvent[];
  const accountId = randomUUID();

  /** A NOTIFY on the bus's channel from outside the bus (another broker, or anyone with SQL access). */
  const notify = (payload: string) => raw.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, payload]);
  const waitFor = (n: number) =>
    waitUntil(() => (received.length >= n ? true : undefined), 10_000, `${n} events on the bus`);
  const dropped = async () =>
    Object.fromEntries((await metrics.busEventsDropped.get()).values.map((v) => [v.labels.reason, v.value]));
  const dropLines = () => logs.lines.filter((l) => String(l.msg).startsWith('dropped an event from the bus'));

  beforeAll(async () => {
    db = await createPostgresDatabase();
    raw = new Client({ connectionString: db.url });
    await raw.connect();
  });
  beforeEach(async () => {
    logs = new LogSink();
    metrics = new BrokerMetrics();
    bus = await PgNotifyEventBus.connect(db.url, pino({ level: 'info' }, logs), metrics);
    received = [];
    bus.subscribe((e) => received.push(e));
  });
  afterEach(() => bus?.close());
  afterAll(async () => {
    await raw?.end();
    await db?.drop();
  });

  it('drops junk payloads with a log line and a count, and still delivers the valid events after them', async () => {
    const remove: BrokerEvent = { kind: 'device-remove', accountId, serial: 8, deviceId: randomUUID() };
    const junk: Array<[reason: string, payload: string]> = [
      ['bad_json', '{"kind":"device-upsert",'],
      ['bad_json', ''],
      ['bad_event', JSON.stringify([{ v: BROKER_EVENT_VERSION, ...remove }])],
      ['bad_event', JSON.stringify({ v: BROKER_EVENT_VERSION, ...remove, kind: 'device-explode' })],
      ['bad_event', JSON.stringify({ v: BROKER_EVENT_VERSION, kind: 'device-remove', accountId, serial: 8 })],
      ['version', JSON.stringify({ v: BROKER_EVENT_VERSION + 1, ...remove })],
    ];
    for (const [, payload] of junk) await notify(payload);

    const upsert: BrokerEvent = {
      kind: 'device-upsert',
      accountId,
      serial: 7,
      device: deviceState('laptop', '100.64.0.9', { endpoints: ['192.0.2.1:51820'], mappingType: null }),
    };
    await bus.publish(upsert);
    await notify(encodeBrokerEvent(remove)); // a valid event from another broker
    await waitFor(2);

    expect(received).toEqual([upsert, remove]);
    expect(await dropped()).toEqual({ bad_json: 2, bad_event: 3, version: 1 });
    const lines = dropLines();
    expect(lines.map((l) => l.reason)).toEqual(junk.map(([reason]) => reason));
    expect(lines.every((l) => l.level === 40)).toBe(true); // warn
    expect(lines[3]!.msg).toMatch(/^dropped an event from the bus: kind: /);
    expect(lines[4]!.msg).toMatch(/^dropped an event from the bus: deviceId: /);
    expect(lines[5]!.msg).toContain(`event version ${BROKER_EVENT_VERSION + 1}`);
  });

  it('refuses to publish an invalid event, and publishes the next one', async () => {
    const invalid = { kind: 'device-remove', accountId, serial: -1, deviceId: randomUUID() } as BrokerEvent;
    await expect(bus.publish(invalid)).rejects.toThrow('broker event device-remove is invalid: serial: ');
    const connected: BrokerEvent = {
      kind: 'device-connected',
      accountId,
      deviceId: randomUUID(),
      connectionId: `abcdef012345:${randomUUID()}`,
    };
    await bus.publish(connected);
    await waitFor(1);
    expect(received).toEqual([connected]);
    expect(await dropped()).toEqual({});
  });

  it('a burst published without waiting arrives whole and in publish order (batched statements)', async () => {
    const burst: BrokerEvent[] = Array.from({ length: 700 }, (_, i) => ({
      kind: 'device-remove',
      accountId,
      serial: i + 1,
      deviceId: randomUUID(),
    }));
    await Promise.all(burst.map((e) => bus.publish(e)));
    await waitFor(burst.length);
    expect(received).toEqual(burst);
  });

  it('a handler that throws is logged; the other handlers and later events are not affected', async () => {
    bus.subscribe((e) => {
      if (e.kind === 'device-remove') throw new Error('handler bug');
    });
    const first: BrokerEvent = { kind: 'device-remove', accountId, serial: 1, deviceId: randomUUID() };
    const second: BrokerEvent = { kind: 'device-remove', accountId, serial: 2, deviceId: randomUUID() };
    await bus.publish(first);
    await bus.publish(second);
    await waitFor(2);
    expect(received).toEqual([first, second]);
    const failures = logs.lines.filter((l) => l.msg === 'event handler failed');
    expect(failures).toHaveLength(2);
    expect(String(failures[0]!.err)).toContain('handler bug');
  });

  it('a LISTEN connection PostgreSQL closed is replaced: reconnection listeners are told, events arrive again', async () => {
    let reconnections = 0;
    bus.onReconnected(() => reconnections++);
    const { rowCount } = await raw.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`,
    );
    expect(rowCount).toBeGreaterThanOrEqual(1); // a previous test's closed listener may still be listed
    await waitUntil(() => (reconnections > 0 ? true : undefined), 10_000, 'the bus listening again');
    const after: BrokerEvent = { kind: 'device-remove', accountId, serial: 1, deviceId: randomUUID() };
    await bus.publish(after);
    await waitFor(1);
    expect(received).toEqual([after]);
    expect(reconnections).toBe(1);
    expect(logs.lines.some((l) => l.msg === 'event bus listening again')).toBe(true);
  });
});
