/** An allocation made on a relay connected to another instance, and the pair it is for. */
export interface RemoteAllocation {
  /** The instance the relay is connected to, where releases go. */
  instance: string;
  relayId: string;
  accountId: string;
  keys: [string, string];
}

/** Allocations this instance's pairs hold on other instances' relays, by allocation id. */
export class RemoteAllocations {
  private readonly byId = new Map<string, RemoteAllocation>();

  get(id: string): RemoteAllocation | undefined {
    return this.byId.get(id);
  }

  set(id: string, allocation: RemoteAllocation): void {
    this.byId.set(id, allocation);
  }

  delete(id: string): boolean {
    return this.byId.delete(id);
  }

  /** Allocations on `relayId` recorded at an instance other than `instance` (where it is now). */
  movedAway(relayId: string, instance: string): Array<[string, RemoteAllocation]> {
    return [...this.byId].filter(([, a]) => a.relayId === relayId && a.instance !== instance);
  }
}

/**
 * Allocations on relays connected here that other instances' pairs hold (allocated or claimed for
 * them): when such a relay moves, their owners follow it, not this instance.
 */
export class ServedAllocations {
  private readonly ids = new Set<string>();

  add(id: string): void {
    this.ids.add(id);
  }

  delete(id: string): void {
    this.ids.delete(id);
  }

  /** The records that are this instance's own (not served); the served ones are forgotten. */
  own<T extends { allocationId: string }>(records: readonly T[]): T[] {
    return records.filter((r) => !this.ids.delete(r.allocationId));
  }
}
