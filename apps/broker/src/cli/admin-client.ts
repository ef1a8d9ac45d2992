import { join } from 'node:path';
import { type AdminRequest, AdminResponse, HEARTBEAT_INTERVAL_MS } from '@trellis/proto';
import { executeAdmin } from '../admin/admin-operations';
import { adminRequest, probeAdminSocket } from '../admin/admin-socket-client';
import { openDatabase } from '../db/database';
import { DEFAULT_ADDRESS_GRACE_SECONDS } from '../defaults';
import { DomainError } from '../domain/errors';
import { type EventBus, NullEventBus } from '../events/event-bus';
import { PgNotifyEventBus } from '../events/pg-notify-bus';
import { createLogger } from '../logger';
import { BrokerMetrics } from '../metrics';
import { createServices } from '../services/services';

export interface AdminTarget {
  dataDir: string;
  databaseUrl?: string;
  zone: string;
}

/**
 * Runs an admin request through the broker serving the data directory (its admin socket), or,
 * when none is serving, directly against the database with the same domain services. On Postgres
 * the direct path publishes its changes with NOTIFY so brokers elsewhere still fan them out.
 */
export async function runAdminRequest(target: AdminTarget, req: AdminRequest): Promise<AdminResponse> {
  const socket = join(target.dataDir, 'admin.sock');
  if (await probeAdminSocket(socket)) return adminRequest(socket, req);
  const database = await openDatabase({ dataDir: target.dataDir, databaseUrl: target.databaseUrl });
  let bus: EventBus = new NullEventBus();
  try {
    // Publishes only: nothing here listens, so the metrics are never read.
    if (database.url) {
      bus = await PgNotifyEventBus.connect(database.url, createLogger('error'), new BrokerMetrics());
    }
    const services = createServices(database.db, bus, {
      zone: target.zone,
      addressGraceSeconds: DEFAULT_ADDRESS_GRACE_SECONDS,
      relayStaleAfterMs: 3 * HEARTBEAT_INTERVAL_MS,
    });
    const result = await executeAdmin(services, req);
    return AdminResponse.parse({ ok: true, result });
  } catch (err) {
    if (err instanceof DomainError) return { ok: false, status: err.status, error: err.message };
    throw err;
  } finally {
    await bus.close();
    await database.close();
  }
}
