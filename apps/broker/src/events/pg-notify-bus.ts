import { Client } from 'pg';
import type { Logger } from 'pino';
import type { BrokerEvent, EventBus, EventHandler } from './event-bus';

export const NOTIFY_CHANNEL = 'trellis_netmap_events';

/**
 * Cross-instance fan-out through Postgres LISTEN/NOTIFY: every instance (this one included) hears
 * every event once, over its own LISTEN connection. Reconnects with backoff if that connection drops.
 */
export class PgNotifyEventBus implements EventBus {
  private readonly handlers = new Set<EventHandler>();
  private listener: Client | undefined;
  private publisher: Client | undefined;
  private closed = false;
  private publishQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  static async connect(url: string, logger: Logger): Promise<PgNotifyEventBus> {
    const bus = new PgNotifyEventBus(url, logger);
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
      if (n.channel !== NOTIFY_CHANNEL || !n.payload) return;
      let event: BrokerEvent;
      try {
        event = JSON.parse(n.payload) as BrokerEvent;
      } catch {
        this.logger.warn('unparseable event on the bus');
        return;
      }
      for (const h of this.handlers) h(event);
    });
    c.on('end', () => {
      if (!this.closed) this.reconnect(1);
    });
    await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
    this.listener = c;
  }

  private reconnect(attempt: number): void {
    const delay = Math.min(30_000, 250 * 2 ** attempt);
    setTimeout(() => {
      if (this.closed) return;
      this.listen().catch(() => this.reconnect(attempt + 1));
    }, delay).unref();
  }

  publish(event: BrokerEvent): Promise<void> {
    const run = this.publishQueue.then(async () => {
      this.publisher ??= await this.client();
      try {
        await this.publisher.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, JSON.stringify(event)]);
      } catch (err) {
        // Drop the broken client; the next publish opens a new one.
        this.publisher.end().catch(() => {});
        this.publisher = undefined;
        throw err;
      }
    });
    this.publishQueue = run.catch(() => {});
    return run;
  }

  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    await this.publishQueue;
    await Promise.all([this.listener?.end().catch(() => {}), this.publisher?.end().catch(() => {})]);
  }
}
