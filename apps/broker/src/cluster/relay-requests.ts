import { randomBytes } from 'node:crypto';
import type { RelayRequest } from '@trellis/proto';
import type { BrokerEvent } from '../events/event-bus';
import type { LocalRelayDirectory, RelayAllocationRecord } from '../relay/relay-directory';
import type { ServedAllocations } from './remote-allocations';

export type RelayReply = { ok: true; record: RelayAllocationRecord | null } | { ok: false; error: string };

interface Pending {
  resolve(reply: RelayReply): void;
  timer: NodeJS.Timeout;
}

/** Requests to another instance about its relays, over the bus: each ends with its reply or a timeout. */
export class RelayRequests {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly from: string,
    private readonly publish: (event: BrokerEvent) => void,
    private readonly timeoutMs: number,
  ) {}

  ask(instance: string, request: RelayRequest): Promise<RelayReply> {
    const requestId = newRequestId();
    return new Promise<RelayReply>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        resolve({ ok: false, error: `broker instance ${instance} did not answer` });
      }, this.timeoutMs);
      timer.unref?.();
      this.pending.set(requestId, { resolve, timer });
      this.publish({ kind: 'relay-request', to: instance, from: this.from, requestId, request });
    });
  }

  /** A request nobody waits for (a release). */
  tell(instance: string, request: RelayRequest): void {
    this.publish({
      kind: 'relay-request',
      to: instance,
      from: this.from,
      requestId: newRequestId(),
      request,
    });
  }

  /** A `relay-reply` to this instance. */
  answered(requestId: string, result: RelayReply): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(requestId);
    p.resolve(result);
  }

  stop(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve({ ok: false, error: 'broker stopping' });
    }
    this.pending.clear();
  }
}

/** The answer to another instance's request for a relay connected here (a release that worked has none). */
export async function answerRelayRequest(
  local: LocalRelayDirectory,
  served: ServedAllocations,
  request: RelayRequest,
): Promise<RelayReply | null> {
  try {
    if (request.op === 'release') {
      served.delete(request.allocationId);
      local.release(request.allocationId);
      return null;
    }
    const { accountId, keys } = request;
    const record =
      request.op === 'allocate'
        ? await local.allocate(request.relayId, accountId, keys, request.idleTimeoutMs)
        : ((await local.claimHeld(accountId, keys, request.exclude))?.record ?? null);
    if (record) served.add(record.allocationId);
    return { ok: true, record };
  } catch (err) {
    return { ok: false, error: (err as Error).message.slice(0, 500) };
  }
}

function newRequestId(): string {
  return randomBytes(8).toString('hex');
}
