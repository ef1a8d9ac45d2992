import type {
  PortRange,
  ReflectorInfo,
  RelayLoadMessage,
  RelayServerMessage,
  RelayTcpInfo,
} from '@trellis/proto';
import { allocationFor, type RelayAllocationRecord, type RelayHandle } from './relay-directory';

/** The control connection of a relay, as the registry uses it. */
export interface RelayLink {
  send(msg: RelayServerMessage): void;
  close(code: number, reason: string): void;
  rttMs(): number | null;
}

/** Who a relay is: `accountId` comes from its token, everything else from its last hello. */
export interface RelayIdentity {
  id: string;
  name: string;
  accountId: string | null;
  publicAddress: string;
  /** The UDP ports it allocates from: an `allocated` outside them is refused. */
  ports: PortRange;
  tcp: RelayTcpInfo | undefined;
  /** The relay's own endpoint reflector, if it runs one. */
  reflector?: ReflectorInfo | undefined;
}

export interface Holding {
  record: RelayAllocationRecord;
  idleTimeoutMs: number;
  /** Adopted from the relay's report when it connected, and not claimed by a pair yet. */
  unclaimed: boolean;
}

/** A relay the registry knows (connected, or away within its grace period) and what it holds. */
export class RelayEntry implements RelayHandle {
  link: RelayLink | null = null;
  downTimer: NodeJS.Timeout | null = null;
  readonly held = new Map<string, Holding>();
  load: RelayLoadMessage | null = null;

  constructor(public identity: RelayIdentity) {}

  get id() {
    return this.identity.id;
  }
  get name() {
    return this.identity.name;
  }
  get accountId() {
    return this.identity.accountId;
  }
  get publicAddress() {
    return this.identity.publicAddress;
  }
  get tcp() {
    return this.identity.tcp;
  }
  rttMs(): number | null {
    return this.link?.rttMs() ?? null;
  }
  allocations(): number {
    return this.held.size;
  }
}

/** Callers get copies: a record they keep must not change under them (bindings are mutated here). */
export const copyRecord = (r: RelayAllocationRecord): RelayAllocationRecord => structuredClone(r);

/**
 * The newest allocation on `relays` for the account and keys (a relay reports what it holds, and
 * the registry records allocations, in the order they were made); null: none.
 */
export function newestHolding(
  relays: readonly RelayEntry[],
  accountId: string,
  keys: readonly [string, string],
): { holding: Holding; relay: RelayEntry } | null {
  let found: { holding: Holding; relay: RelayEntry } | null = null;
  for (const relay of relays)
    for (const holding of relay.held.values())
      if (allocationFor(holding.record, accountId, keys)) found = { holding, relay };
  return found;
}
