import { randomUUID } from 'node:crypto';
import type { HeldAllocation } from '@trellis/proto';

/** An allocation as a relay reports holding it when it connects: open on `port`, both sides bound. */
export function heldAllocation(accountId: string, port: number, keys: [string, string]): HeldAllocation {
  return {
    allocationId: randomUUID(),
    accountId,
    port,
    sides: [
      { publicKey: keys[0], bound: { transport: 'udp', endpoint: '192.0.2.11:51820' } },
      { publicKey: keys[1], bound: { transport: 'tcp' } },
    ],
    idleTimeoutMs: 600_000,
  };
}
