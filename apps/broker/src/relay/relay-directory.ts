import type { NetmapRelay, ReflectorInfo, RelayBinding, RelaySide, RelayTcpInfo } from '@trellis/proto';

export interface RelayHandle {
  readonly id: string;
  readonly name: string;
  /** null: shared (operator) relay. */
  readonly accountId: string | null;
  readonly publicAddress: string;
  readonly tcp: RelayTcpInfo | undefined;
  /** Control-channel round trip, ms (null until measured). */
  rttMs(): number | null;
  /** Current number of allocations. */
  allocations(): number;
}
export interface RelayAllocationRecord {
  allocationId: string;
  relayId: string;
  accountId: string;
  port: number;
  sides: [RelaySide, RelaySide];
}
/** An allocation a relay already held when it connected, claimed for a pair (see claimAdopted). */
export interface AdoptedAllocation {
  record: RelayAllocationRecord;
  relay: RelayHandle;
}
export interface RelayDirectory {
  /** Relays connected to this broker instance that may serve `accountId`: its private relays if it has any online, else the shared ones. */
  relaysFor(accountId: string): RelayHandle[];
  /** Asks the relay for an allocation for the two device keys; resolves with the port, rejects (Error with a clear message) on allocate-failed, timeout (5 s) or the relay going away. */
  allocate(
    relayId: string,
    accountId: string,
    keys: [string, string],
    idleTimeoutMs: number,
  ): Promise<RelayAllocationRecord>;
  /**
   * Before allocating for a pair: an allocation a relay already held for this account and these two
   * keys when it connected (this broker restarted and adopted it), now claimed for the pair. Use it as
   * if allocate() had returned it (tell both agents this relay and port: nothing changes for them;
   * release() it when the pair stops wanting it). Right after a restart, waits (bounded) for the
   * relays that were online before to connect. Null: allocate as usual.
   */
  claimAdopted(
    accountId: string,
    keys: [string, string],
    /** Relays the pair is moving off (ClusterRelays: skipped when it claims what relays hold). */
    exclude?: readonly string[],
  ): Promise<AdoptedAllocation | null>;
  /**
   * The pair keeps an allocation claimAdopted returned (ClusterRelays: from now on this instance
   * follows it when its relay moves, even if it was allocated here for another instance's pair).
   */
  claimKept?(allocationId: string): void;
  release(allocationId: string): void;
  /** Events: 'relay-up' (handle), 'relay-down' (relayId, allocations it held: the allocator moves them; fired when a relay stays disconnected for longer than a grace period (default 5 s), not on a quick reconnect), 'expired' (allocationId), 'bound' (allocationId, publicKey, binding). */
  on(event: 'relay-up', fn: (relay: RelayHandle) => void): void;
  on(event: 'relay-down', fn: (relayId: string, lost: RelayAllocationRecord[]) => void): void;
  on(event: 'expired', fn: (allocationId: string) => void): void;
  on(event: 'bound', fn: (allocationId: string, publicKey: string, binding: RelayBinding) => void): void;
  /** A relay's reflector saw a device key at an endpoint. */
  on(event: 'observed', fn: (relayId: string, publicKey: string, endpoint: string) => void): void;
  /** Relays the given account's devices should probe (NetmapSelf.relays). */
  netmapRelays(accountId: string): NetmapRelay[];
}

/** The relays connected to this instance, as the cluster directory (ClusterRelays) uses them. */
export interface LocalRelayDirectory extends RelayDirectory {
  /** For another instance's owner: an allocation a relay here holds for the keys (adopted or in use). */
  claimHeld(
    accountId: string,
    keys: [string, string],
    exclude: readonly string[],
  ): Promise<AdoptedAllocation | null>;
  /** The relay is connected to another instance: stop waiting for it to rejoin here. */
  seenElsewhere(relayId: string): void;
  hasPrivateRelays(accountId: string): boolean;
  /** Relays connected here. */
  connected(): RelayHandle[];
  /** The relay's endpoint reflector, if it runs one. */
  reflectorOf(relayId: string): ReflectorInfo | undefined;
  /** A shared relay connected here that runs a reflector. */
  sharedReflector(): { relayId: string; reflector: ReflectorInfo } | undefined;
  isOnline(relayId: string): boolean;
}

/** A relay as devices see it in their netmap (they probe it and may reach it over TCP). */
export function toNetmapRelay(r: RelayHandle): NetmapRelay {
  return { id: r.id, name: r.name, address: r.publicAddress, ...(r.tcp ? { tcp: r.tcp } : {}) };
}

/** Whether the allocation is `accountId`'s for these two device keys (in either order). */
export function allocationFor(
  record: RelayAllocationRecord,
  accountId: string,
  keys: readonly string[],
): boolean {
  // Every claim scans every allocation of the relays serving the account with this: no arrays.
  const x = record.sides[0].publicKey;
  const y = record.sides[1].publicKey;
  return (
    record.accountId === accountId && ((x === keys[0] && y === keys[1]) || (x === keys[1] && y === keys[0]))
  );
}

/** The events a relay directory emits (see RelayDirectory.on). */
export type RelayListeners = {
  'relay-up': (relay: RelayHandle) => void;
  'relay-down': (relayId: string, lost: RelayAllocationRecord[]) => void;
  expired: (allocationId: string) => void;
  bound: (allocationId: string, publicKey: string, binding: RelayBinding) => void;
  /** A relay's reflector saw a device key at an endpoint (enrollment not checked here). */
  observed: (relayId: string, publicKey: string, endpoint: string) => void;
};
