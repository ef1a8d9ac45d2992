import { randomUUID } from 'node:crypto';
import { RelayAllocation } from '@trellis/proto';
import type { BrokerMetrics } from '../metrics';
import type { RelayAllocationRecord } from './relay-directory';
import type { RelayEntry } from './relay-entry';

export interface PendingAllocationsOptions {
  metrics: BrokerMetrics;
  /** An allocate without an answer fails after this. */
  timeoutMs: number;
  /** Tells the relay to drop the allocation, in case it makes it after all. */
  sendRelease(relayId: string, allocationId: string): void;
}

/** What an allocation in flight was asked as. */
export interface PendingRequest {
  relayId: string;
  allocation: RelayAllocation;
}

interface PendingAllocation extends PendingRequest {
  timer: NodeJS.Timeout;
  resolve(record: RelayAllocationRecord): void;
  reject(err: Error): void;
}

/**
 * Allocations asked of relays and not answered yet. Each settles once: answered (the registry holds
 * it, then completes it here), refused, timed out, released, or its relay gone. Failures are counted.
 */
export class PendingAllocations {
  private readonly pending = new Map<string, PendingAllocation>();

  constructor(private readonly opts: PendingAllocationsOptions) {}

  /** See RelayDirectory.allocate; `relay` is the registry's entry for `relayId`, if any. */
  request(
    relayId: string,
    relay: RelayEntry | undefined,
    accountId: string,
    keys: [string, string],
    idleTimeoutMs: number,
  ): Promise<RelayAllocationRecord> {
    const link = relay?.link;
    if (!relay || !link) return this.refuse('not_connected', `relay ${relayId} is not connected`);
    if (relay.accountId !== null && relay.accountId !== accountId) {
      return this.refuse('wrong_account', `relay ${relay.name} is private to another account`);
    }
    if (keys[0] === keys[1]) return this.refuse('invalid', 'an allocation needs two different keys');
    const parsed = RelayAllocation.safeParse({
      allocationId: randomUUID(),
      accountId,
      port: null,
      sides: keys.map((publicKey) => ({ publicKey, bound: null })),
      idleTimeoutMs,
    });
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return this.refuse('invalid', `invalid allocation: ${issue?.path.join('.')} ${issue?.message}`);
    }
    const allocation = parsed.data;
    const { timeoutMs } = this.opts;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.fail(
            allocation.allocationId,
            'timeout',
            `relay ${relay.name} did not answer the allocation within ${timeoutMs} ms`,
          ),
        timeoutMs,
      );
      this.pending.set(allocation.allocationId, { relayId, allocation, timer, resolve, reject });
      link.send({ type: 'allocate', allocation });
    });
  }

  has(allocationId: string): boolean {
    return this.pending.has(allocationId);
  }

  get(allocationId: string): PendingRequest | undefined {
    return this.pending.get(allocationId);
  }

  /** The relay made it and the registry holds it: the caller gets (a copy of) its record. */
  complete(allocationId: string, record: RelayAllocationRecord): void {
    const p = this.pending.get(allocationId);
    if (!p) return;
    this.pending.delete(allocationId);
    clearTimeout(p.timer);
    p.resolve(record);
  }

  /** Rejects a pending allocation; `release` also tells the relay to drop it if it made it late. */
  fail(allocationId: string, reason: string, message: string, release = true): void {
    const p = this.pending.get(allocationId);
    if (!p) return;
    this.pending.delete(allocationId);
    clearTimeout(p.timer);
    if (release) this.opts.sendRelease(p.relayId, allocationId);
    this.opts.metrics.relayAllocationFailures.inc({ reason });
    p.reject(new Error(message));
  }

  /** Fails those asked of one relay (`relayId`), or of every relay; the relay is not told. */
  failAll(relayId: string | null, reason: string, message: string): void {
    for (const [id, p] of [...this.pending])
      if (relayId === null || p.relayId === relayId) this.fail(id, reason, message, false);
  }

  private refuse(reason: string, message: string): Promise<never> {
    this.opts.metrics.relayAllocationFailures.inc({ reason });
    return Promise.reject(new Error(message));
  }
}
