import type { IncomingMessage } from 'node:http';
import type { AuditEventInfo, AuditPage, AuditQuery } from '@trellis/proto';
import { and, desc, eq, ilike, like, lt, or, type SQL } from 'drizzle-orm';
import type { Db } from '../db/database';
import { type AuditEventRow, auditEvents } from '../db/schema';
import { unmapped } from '../security/client-address';
import type { Tx } from '../services/tx';
import type { Actor, AuditEvent } from './audit-events';

/** How long events are kept unless configured (ServicesConfig.auditMaxAgeDays). */
export const DEFAULT_AUDIT_MAX_AGE_DAYS = 365;

/** The address a request came from (an IPv4-mapped IPv6 one as plain IPv4). */
export function requestAddress(req: IncomingMessage): string | null {
  const address = req.socket.remoteAddress;
  if (!address) return null;
  return unmapped(address);
}

/** The signed-in user making a request, as the log names them. */
export function userActor(user: { userId: string; email: string }, req: IncomingMessage): Actor {
  return { kind: 'user', userId: user.userId, email: user.email, address: requestAddress(req) };
}

/**
 * Records one event. Pass the transaction of the change itself: the event then commits with it,
 * and a change that fails leaves none.
 */
export async function recordAudit(tx: Tx | Db, actor: Actor, event: AuditEvent): Promise<void> {
  await tx.insert(auditEvents).values(auditRow(actor, event));
}

/** Records several events in one statement (a batch of enrollments), in order. */
export async function recordAudits(
  tx: Tx | Db,
  entries: ReadonlyArray<{ actor: Actor; event: AuditEvent }>,
): Promise<void> {
  if (entries.length === 0) return;
  await tx.insert(auditEvents).values(entries.map((e) => auditRow(e.actor, e.event)));
}

function auditRow(actor: Actor, event: AuditEvent): typeof auditEvents.$inferInsert {
  return {
    accountId: event.accountId,
    actorKind: actor.kind,
    actorUserId: actor.kind === 'user' ? actor.userId : null,
    actorEmail: actor.kind === 'user' ? actor.email : null,
    clientAddress: 'address' in actor ? actor.address : null,
    action: event.action,
    targetKind: event.target.kind,
    targetId: event.target.id,
    targetName: event.target.name,
    details: event.details as Record<string, unknown>,
  };
}

function toInfo(row: AuditEventRow): AuditEventInfo {
  return {
    id: row.id,
    at: row.at.toISOString(),
    actor: {
      kind: row.actorKind,
      userId: row.actorUserId,
      email: row.actorEmail,
      address: row.clientAddress,
    },
    action: row.action as AuditEventInfo['action'],
    target: { kind: row.targetKind, id: row.targetId, name: row.targetName },
    details: row.details,
  };
}

/** `%`, `_` and `\` match themselves in a LIKE pattern. */
const likeEscaped = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Reading the log (one account's, page by page) and keeping it bounded. */
export class AuditLogService {
  constructor(
    private readonly db: Db,
    private readonly maxAgeDays: number = DEFAULT_AUDIT_MAX_AGE_DAYS,
  ) {}

  /**
   * One page of the account's events, newest first. Paging goes by id, which only grows: events
   * recorded while someone pages land before the first page and never shift the older pages.
   */
  async page(accountId: string, query: AuditQuery): Promise<AuditPage> {
    const where: SQL[] = [eq(auditEvents.accountId, accountId)];
    if (query.before !== undefined) where.push(lt(auditEvents.id, query.before));
    if (query.action) where.push(like(auditEvents.action, `${likeEscaped(query.action)}%`));
    const text = query.q?.trim();
    if (text) {
      const pattern = `%${likeEscaped(text)}%`;
      where.push(
        or(
          ilike(auditEvents.actorEmail, pattern),
          ilike(auditEvents.targetName, pattern),
          ilike(auditEvents.targetId, pattern),
          ilike(auditEvents.clientAddress, pattern),
        )!,
      );
    }
    const rows = await this.db
      .select()
      .from(auditEvents)
      .where(and(...where))
      .orderBy(desc(auditEvents.id))
      .limit(query.limit + 1);
    const events = rows.slice(0, query.limit).map(toInfo);
    const more = rows.length > query.limit;
    return { events, next: more ? (events[events.length - 1]?.id ?? null) : null };
  }

  /** Deletes the events older than the configured age (every account's); returns how many. */
  async purgeExpired(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.maxAgeDays * 86_400_000);
    const gone = await this.db
      .delete(auditEvents)
      .where(lt(auditEvents.at, cutoff))
      .returning({ id: auditEvents.id });
    return gone.length;
  }
}

/** Between purges of old events by a running broker. */
export const AUDIT_PURGE_INTERVAL_MS = 3_600_000;

/** Purges at once and then every `intervalMs` (a failure is logged and retried next time); returns stop. */
export function startAuditPurge(
  audit: AuditLogService,
  logger: { warn(obj: object, msg: string): void },
  intervalMs = AUDIT_PURGE_INTERVAL_MS,
): () => void {
  const purge = () =>
    audit.purgeExpired().catch((err: unknown) => {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'audit purge failed');
    });
  void purge();
  const timer = setInterval(purge, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
