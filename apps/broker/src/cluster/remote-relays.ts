import type { ClusterRelay } from '@trellis/proto';
import type { RelayHandle } from '../relay/relay-directory';

/** A relay connected to another broker instance, as announced by it (`relay-present`). */
export class RemoteRelay implements RelayHandle {
  constructor(
    public instance: string,
    public info: ClusterRelay,
    public count: number,
  ) {}

  get id() {
    return this.info.id;
  }
  get name() {
    return this.info.name;
  }
  get accountId() {
    return this.info.accountId;
  }
  get publicAddress() {
    return this.info.publicAddress;
  }
  get tcp() {
    return this.info.tcp;
  }
  /** The control round trip is the other instance's to measure. */
  rttMs(): number | null {
    return null;
  }
  allocations(): number {
    return this.count;
  }
}

/** The relays of the other instances, by id, and which instance holds each. */
export class RemoteRelays {
  private readonly relays = new Map<string, RemoteRelay>();
  /** Known before this instance's bus was away, and not announced since (see `doubtAll`). */
  private readonly doubted = new Set<string>();

  /** Returns the relay when it is new (or moved here from another instance's announcement). */
  present(instance: string, info: ClusterRelay, allocations: number): RemoteRelay | 'known' {
    const known = this.relays.get(info.id);
    this.doubted.delete(info.id);
    if (known && known.instance === instance) {
      known.info = info;
      known.count = allocations;
      return 'known';
    }
    const relay = new RemoteRelay(instance, info, allocations);
    this.relays.set(info.id, relay);
    return known ? 'known' : relay;
  }

  /** Forgets the relay if `instance` is the one it is known at; returns whether it did. */
  gone(instance: string, relayId: string): boolean {
    if (this.relays.get(relayId)?.instance !== instance) return false;
    this.relays.delete(relayId);
    return true;
  }

  /** Forgets every relay of an instance that is gone; returns their ids. */
  instanceGone(instance: string): string[] {
    const ids = [...this.relays.values()].filter((r) => r.instance === instance).map((r) => r.id);
    for (const id of ids) this.relays.delete(id);
    return ids;
  }

  /** This instance's bus was away: a relay's `relay-gone` may be lost. Each must be announced again. */
  doubtAll(): void {
    for (const id of this.relays.keys()) this.doubted.add(id);
  }

  /** Forgets the relays not announced again since `doubtAll`; returns them. */
  dropDoubted(): RemoteRelay[] {
    const dropped = [...this.doubted].flatMap((id) => this.relays.get(id) ?? []);
    for (const relay of dropped) this.relays.delete(relay.id);
    this.doubted.clear();
    return dropped;
  }

  get(relayId: string): RemoteRelay | undefined {
    return this.relays.get(relayId);
  }

  all(): RemoteRelay[] {
    return [...this.relays.values()];
  }
}
