import { randomUUID } from 'node:crypto';
import type { NetmapRelay, RelayBinding, RelayTcpInfo } from '@trellis/proto';
import {
  type AdoptedAllocation,
  allocationFor,
  type LocalRelayDirectory,
  type RelayAllocationRecord,
  type RelayHandle,
  toNetmapRelay,
} from '../../src/relay/relay-directory';

export const TCP_INFO: RelayTcpInfo = {
  url: 'wss://relay.example:443',
  fingerprint: Array.from({ length: 32 }, () => 'AB').join(':'),
};

let relays = 0;

/** A relay the test controls: its load and whether it refuses allocations. Ids grow with creation. */
export class FakeRelay implements RelayHandle {
  readonly id = `00000000-0000-4000-8000-${String(++relays).padStart(12, '0')}`;
  load = 0;
  refuses = false;
  online = true;
  constructor(
    readonly name: string,
    readonly publicAddress: string,
    readonly accountId: string | null = null,
    readonly tcp: RelayTcpInfo | undefined = undefined,
  ) {}
  rttMs(): number | null {
    return null;
  }
  allocations(): number {
    return this.load;
  }
}

type Listener = (...args: never[]) => void;

/**
 * An in-memory RelayDirectory: private relays of an account first (as the real one), ports counted
 * up from 40000, allocations answered on the next microtask (or refused), events emitted by the test.
 */
export class FakeRelayDirectory implements LocalRelayDirectory {
  readonly relays: FakeRelay[] = [];
  readonly held = new Map<string, RelayAllocationRecord>();
  readonly released: string[] = [];
  /** Relay names in the order allocations were asked of them. */
  readonly asked: string[] = [];
  /** Allocations relays reported holding when they connected, each claimable once. */
  readonly adopted: AdoptedAllocation[] = [];
  private nextPort = 40000;
  private readonly listeners = new Map<string, Listener[]>();

  add(relay: FakeRelay): FakeRelay {
    this.relays.push(relay);
    return relay;
  }

  relaysFor(accountId: string): RelayHandle[] {
    const online = this.relays.filter((r) => r.online);
    const own = online.filter((r) => r.accountId === accountId);
    return own.length > 0 ? own : online.filter((r) => r.accountId === null);
  }

  async allocate(
    relayId: string,
    accountId: string,
    keys: [string, string],
    _idleTimeoutMs: number,
  ): Promise<RelayAllocationRecord> {
    const relay = this.relays.find((r) => r.id === relayId);
    this.asked.push(relay?.name ?? relayId);
    await Promise.resolve();
    if (!relay?.online) throw new Error(`relay ${relayId} is not connected`);
    if (relay.refuses) throw new Error(`relay ${relay.name}: allocate-failed: no free port`);
    const record: RelayAllocationRecord = {
      allocationId: randomUUID(),
      relayId,
      accountId,
      port: this.nextPort++,
      sides: [
        { publicKey: keys[0], bound: null },
        { publicKey: keys[1], bound: null },
      ],
    };
    relay.load += 1;
    this.held.set(record.allocationId, record);
    return record;
  }

  /** A relay reported holding an allocation for these keys when it connected (the broker restarted). */
  adopt(
    relay: FakeRelay,
    accountId: string,
    keys: [string, string],
    allocationId: string = randomUUID(),
  ): RelayAllocationRecord {
    const record: RelayAllocationRecord = {
      allocationId,
      relayId: relay.id,
      accountId,
      port: this.nextPort++,
      sides: [
        { publicKey: keys[0], bound: { transport: 'udp', endpoint: '192.0.2.11:1111' } },
        { publicKey: keys[1], bound: { transport: 'tcp' } },
      ],
    };
    relay.load += 1;
    this.held.set(record.allocationId, record);
    this.adopted.push({ record, relay });
    return record;
  }

  async claimAdopted(accountId: string, keys: [string, string]): Promise<AdoptedAllocation | null> {
    const serving = this.relaysFor(accountId);
    // Newest first, as RelayAdoptions.
    const at = this.adopted.findLastIndex(
      ({ record, relay }) => serving.includes(relay) && allocationFor(record, accountId, keys),
    );
    return at === -1 ? null : this.adopted.splice(at, 1)[0]!;
  }

  async claimHeld(
    accountId: string,
    keys: [string, string],
    exclude: readonly string[],
  ): Promise<AdoptedAllocation | null> {
    // The newest held for the keys, adopted or not, as RelayRegistry.claimHeld (an adoption so
    // taken is claimed).
    let found: AdoptedAllocation | null = null;
    for (const record of this.held.values()) {
      const relay = this.relays.find((r) => r.id === record.relayId && r.online);
      if (relay && !exclude.includes(relay.id) && allocationFor(record, accountId, keys))
        found = { record, relay };
    }
    const at = this.adopted.findIndex((a) => a.record.allocationId === found?.record.allocationId);
    if (at !== -1) this.adopted.splice(at, 1);
    return found;
  }

  /** Relays another instance announced: claims stop waiting for them (recorded for tests). */
  readonly elsewhere: string[] = [];
  seenElsewhere(relayId: string): void {
    this.elsewhere.push(relayId);
  }

  hasPrivateRelays(accountId: string): boolean {
    return this.relays.some((r) => r.accountId === accountId);
  }

  reflectorOf(): undefined {
    return undefined;
  }

  sharedReflector(): undefined {
    return undefined;
  }

  connected(): RelayHandle[] {
    return this.relays.filter((r) => r.online);
  }

  isOnline(relayId: string): boolean {
    return this.relays.some((r) => r.id === relayId && r.online);
  }

  release(allocationId: string): void {
    this.released.push(allocationId);
    const record = this.held.get(allocationId);
    if (!record) return;
    this.held.delete(allocationId);
    const relay = this.relays.find((r) => r.id === record.relayId);
    if (relay) relay.load -= 1;
  }

  on(event: 'relay-up', fn: (relay: RelayHandle) => void): void;
  on(event: 'relay-down', fn: (relayId: string, lost: RelayAllocationRecord[]) => void): void;
  on(event: 'expired', fn: (allocationId: string) => void): void;
  on(event: 'bound', fn: (allocationId: string, publicKey: string, binding: RelayBinding) => void): void;
  on(event: 'observed', fn: (relayId: string, publicKey: string, endpoint: string) => void): void;
  on(event: string, fn: Listener): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
  }

  netmapRelays(accountId: string): NetmapRelay[] {
    return this.relaysFor(accountId).map(toNetmapRelay);
  }

  /** A relay connects (again). */
  up(relay: FakeRelay): void {
    relay.online = true;
    if (!this.relays.includes(relay)) this.relays.push(relay);
    this.emit('relay-up', relay);
  }

  /** A relay stayed away past the grace: its allocations are lost. */
  down(relay: FakeRelay): void {
    relay.online = false;
    const lost = [...this.held.values()].filter((r) => r.relayId === relay.id);
    for (const r of lost) this.held.delete(r.allocationId);
    relay.load = 0;
    this.emit('relay-down', relay.id, lost);
  }

  expire(allocationId: string): void {
    this.held.delete(allocationId);
    this.emit('expired', allocationId);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const fn of this.listeners.get(event) ?? []) (fn as (...a: unknown[]) => void)(...args);
  }
}
