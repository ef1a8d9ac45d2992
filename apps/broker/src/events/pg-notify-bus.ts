import { type BrokerEvent, decodeBrokerEvent, encodeBrokerEvent, NOTIFY_CHANNEL } from '@trellis/proto';
import { Client } from 'pg';
import type { Logger } from 'pino';
import type { BrokerMetrics } from '../metrics';
import type { EventBus, EventHandler } from './event-bus';
import { PublishBatcher } from './publish-batcher';

export { NOTIFY_CHANNEL };

/**
 * Cross-instance fan-out through Postgres LISTEN/NOTIFY: every instance (this one included) hears
 * every event once, over its own LISTEN connection. Reconnects with backoff if that connection drops.
 * Every payload is parsed with proto's BrokerEvent schema; one that does not parse (another version,
 * a stray NOTIFY on the channel) is logged, counted and dropped.
 */
export class PgNotifyEventBus implements EventBus {
  private readonly handlers = new Set<EventHandler>();
  private readonly reconnected = new Set<() => void>();
  private listener: Client | undefined;
  private publisher: Client | undefined;
  private closed = false;

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
    private readonly metrics: BrokerMetrics,
  ) {}

  static async connect(url: string, logger: Logger, metrics: BrokerMetrics): Promise<PgNotifyEventBus> {
    const bus = new PgNotifyEventBus(url, logger, metrics);
    await bus.listen();
    bus.publisher = await bus.client();
    return bus;
  }

  private async client(): Promise<Client> {
    const c = new Client({ connectionString: this.url });
    c.on('error', (err) => this.logger.warn({ err: err.message }, 'event bus connection error'));
    await c.connect();
    return c;
  }

  private async listen(): Promise<void> {
    const c = await this.client();
    c.on('notification', (n) => {
      if (n.channel === NOTIFY_CHANNEL) this.deliver(n.payload ?? '');
    });
    c.on('end', () => {
      if (!this.closed) this.reconnect(1);
    });
    await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
    this.listener = c;
  }

  private deliver(payload: string): void {
    const decoded = decodeBrokerEvent(payload);
    if (!decoded.ok) {
      this.metrics.busEventsDropped.inc({ reason: decoded.reason });
      this.logger.warn(
        { reason: decoded.reason, payload: payload.slice(0, 200) },
        `dropped an event from the bus: ${decoded.error}`,
      );
      return;
    }
    for (const h of this.handlers) {
      // A failing handler must neither reach pg's connection (it would break LISTEN) nor skip the others.
      try {
        h(decoded.event);
      } catch (err) {
        this.logger.error(
          { kind: decoded.event.kind, err: err instanceof Error ? err.stack : String(err) },
          'event handler failed',
        );
      }
    }
  }

  private reconnect(attempt: number): void {
    const delay = Math.min(30_000, 250 * 2 ** attempt);
    setTimeout(() => {
      if (this.closed) return;
      this.listen().then(
        () => {
          this.logger.info({ attempt }, 'event bus listening again');
          for (const fn of this.reconnected) fn();
        },
        () => this.reconnect(attempt + 1),
      );
    }, delay).unref();
  }

  onReconnected(fn: () => void): () => void {
    this.reconnected.add(fn);
    return () => this.reconnected.delete(fn);
  }

  /**
   * Publishes on the publishing connection, batched with whatever else is published meanwhile (one
   * statement: all of a batch are delivered, in order, or none). A connection broken meanwhile
   * (PostgreSQL restarted) is replaced and the batch sent once more before its publishes fail.
   * PostgreSQL delivers identical payloads of one transaction once; events carry a serial or a
   * connection id, so only true duplicates collapse.
   */
  publish(event: BrokerEvent): Promise<void> {
    let payload: string;
    try {
      payload = encodeBrokerEvent(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.batcher.publish(payload);
  }

  private readonly batcher = new PublishBatcher(async (payloads) => {
    for (let attempt = 1; ; attempt++) {
      this.publisher ??= await this.client();
      try {
        await this.publisher.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [
          NOTIFY_CHANNEL,
          payloads,
        ]);
        return;
      } catch (err) {
        // Drop the broken client; the retry (or the next batch) opens a new one.
        this.publisher.end().catch(() => {});
        this.publisher = undefined;
        if (attempt >= 2) throw err;
      }
    }
  });

  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    await this.batcher.idle();
    await Promise.all([this.listener?.end().catch(() => {}), this.publisher?.end().catch(() => {})]);
  }
}
