import { randomUUID } from 'node:crypto';
import type { RelayAllocation } from '@trellis/proto';
import type { WireGuardPair } from './wireguard-pair';

/** An allocation for the pair's two keys, as the broker would send it: unbound, any port. */
export function allocationFor(
  pair: WireGuardPair,
  overrides: Partial<RelayAllocation> = {},
): RelayAllocation {
  return {
    allocationId: randomUUID(),
    accountId: 'acct-1',
    port: null,
    sides: [
      { publicKey: pair.keys[0], bound: null },
      { publicKey: pair.keys[1], bound: null },
    ],
    idleTimeoutMs: 60_000,
    ...overrides,
  };
}
