import type { BrokerEvent } from '@trellis/proto';

/** A change to an account's netmap or to who holds a device's control connection (shape: proto). */
export type { BrokerEvent };

export type EventHandler = (event: BrokerEvent) => void;

/**
 * Fan-out of changes to every broker instance (including this one). Handlers run once per event
 * per instance; publishers do not deliver to themselves separately.
 */
export interface EventBus {
  publish(event: BrokerEvent): Promise<void>;
  subscribe(handler: EventHandler): () => void;
  /** Called after the bus lost its connection and has it again: events published meanwhile are lost. */
  onReconnected(fn: () => void): () => void;
  close(): Promise<void>;
}

/** Single-process bus: delivers synchronously, in publish order. */
export class InProcessEventBus implements EventBus {
  private readonly handlers = new Set<EventHandler>();

  async publish(event: BrokerEvent): Promise<void> {
    for (const h of this.handlers) h(event);
  }

  subscribe(handler: EventHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** In one process nothing is ever lost in transit. */
  onReconnected(): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}

/** A bus that only publishes (admin CLI on a database no broker of this process serves). */
export class NullEventBus implements EventBus {
  async publish(): Promise<void> {}
  subscribe(): () => void {
    return () => {};
  }
  onReconnected(): () => void {
    return () => {};
  }
  async close(): Promise<void> {}
}
