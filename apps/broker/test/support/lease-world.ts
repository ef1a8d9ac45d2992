import { randomBytes, randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { eq, sql } from 'drizzle-orm';
import pino from 'pino';
import { type Database, openDatabase } from '../../src/db/database';
import { accounts, brokerInstances, devices } from '../../src/db/schema';
import { type BrokerEvent, InProcessEventBus } from '../../src/events/event-bus';
import { InstanceLeases, type Repeat } from '../../src/instances/instance-leases';
import { BrokerMetrics } from '../../src/metrics';
import { createServices, type Services } from '../../src/services/services';
import type { Backend } from './backends';
import { LogSink } from './fixture';

/** Records what it publishes (and still delivers it in-process). */
export class RecordingBus extends InProcessEventBus {
  readonly published: BrokerEvent[] = [];
  override async publish(event: BrokerEvent): Promise<void> {
    this.published.push(event);
    await super.publish(event);
  }
}

/** One broker instance's view of the database: its own services, bus, metrics and log lines. */
export interface Node {
  services: Services;
  bus: RecordingBus;
  metrics: BrokerMetrics;
  logs: LogSink;
  leases(id?: string, extra?: { repeat?: Repeat; instances?: Services['instances'] }): InstanceLeases;
}

export const newInstanceId = () => randomBytes(6).toString('hex');
/** A timer that never fires: tests drive rounds with tick(). */
export const never: Repeat = () => () => {};

/**
 * Services over a database for several simulated instances. On Postgres each node gets its own
 * connection pool (truly concurrent); PGlite allows one open database, so nodes share it.
 */
export async function openWorld(backend: Backend) {
  const opened: Database[] = [];
  const open = async () => {
    const d = await openDatabase({ dataDir: backend.dataDir, databaseUrl: backend.databaseUrl });
    opened.push(d);
    return d;
  };
  const first = await open();
  const db = first.db;
  const node = async (): Promise<Node> => {
    const d = backend.name === 'postgres' ? await open() : first;
    const bus = new RecordingBus();
    const metrics = new BrokerMetrics();
    const logs = new LogSink();
    const services = createServices(d.db, bus, {
      zone: 'test.internal',
      addressGraceSeconds: 60,
      relayStaleAfterMs: 45_000,
    });
    const leases: Node['leases'] = (id = newInstanceId(), extra = {}) =>
      new InstanceLeases({
        instanceId: id,
        url: `https://${id}.test:8443`,
        version: 'test',
        instances: extra.instances ?? services.instances,
        devices: services.devices,
        metrics,
        logger: pino({ level: 'info' }, logs),
        repeat: extra.repeat ?? never,
      });
    return { services, bus, metrics, logs, leases };
  };
  const admin = await node();

  return {
    db,
    node,
    /** An account with `count` enrolled devices (offline); returns the account id and device ids. */
    async account(count: number) {
      const name = `acct-${randomUUID().slice(0, 8)}`;
      const { account } = await admin.services.accounts.create(name, `o@${name}.test`, 'pw-owner-1234');
      const { key } = await admin.services.setupKeys.create(account.id, { name: 'k', reusable: true });
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const r = await admin.services.devices.enroll({
          setupKey: key,
          publicKey: generateKeyPair().publicKey,
          hostname: `h${i}`,
          os: 'linux',
          endpoints: [],
          proven: false,
        });
        ids.push(r.deviceId);
      }
      return { accountId: account.id, ids };
    },
    /** Marks the device online through a control connection of instance `instanceId`. */
    async online(deviceId: string, instanceId: string): Promise<string> {
      const connectionId = `${instanceId}:${randomUUID()}`;
      await admin.services.devices.markOnline(deviceId, connectionId);
      return connectionId;
    },
    async connectionOf(deviceId: string): Promise<string | null> {
      const [row] = await db.select().from(devices).where(eq(devices.id, deviceId));
      return row!.connectionId;
    },
    async serialOf(accountId: string): Promise<number> {
      const [row] = await db.select().from(accounts).where(eq(accounts.id, accountId));
      return row!.netmapSerial;
    },
    /** The instance stopped renewing long ago (its lease ran out by the database's clock). */
    async expire(instanceId: string): Promise<void> {
      await db
        .update(brokerInstances)
        .set({ expiresAt: sql`now() - interval '1 second'` })
        .where(eq(brokerInstances.id, instanceId));
    },
    async leaseRow(instanceId: string) {
      const [row] = await db.select().from(brokerInstances).where(eq(brokerInstances.id, instanceId));
      return row;
    },
    async clearLeases(): Promise<void> {
      await db.delete(brokerInstances);
    },
    async close(): Promise<void> {
      for (const d of opened.reverse()) await d.close();
    },
  };
}

export type LeaseWorld = Awaited<ReturnType<typeof openWorld>>;

export async function counterValue(metric: { get(): Promise<{ values: Array<{ value: number }> }> }) {
  return (await metric.get()).values[0]?.value ?? 0;
}

export function logLines(logs: LogSink, msg: string) {
  return logs.lines.filter((l) => l.msg === msg);
}
