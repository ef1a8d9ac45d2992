import type { NetmapRelay, ReflectorInfo, RelayRequest } from '@trellis/proto';
import type { Logger } from 'pino';
import type { BrokerEvent, EventBus } from '../events/event-bus';
import {
  type AdoptedAllocation,
  type LocalRelayDirectory,
  type RelayAllocationRecord,
  type RelayDirectory,
  type RelayHandle,
  type RelayListeners,
  toNetmapRelay,
} from '../relay/relay-directory';
import { answerRelayRequest, RelayRequests } from './relay-requests';
import { type RemoteAllocation, RemoteAllocations, ServedAllocations } from './remote-allocations';
import { type RemoteRelay, RemoteRelays } from './remote-relays';

type Listeners = RelayListeners;

export interface ClusterRelaysOptions {
  instanceId: string;
  logger: Logger;
  /** A request to another instance without an answer fails after this; default 6 s (its relay's own is 5 s). */
  requestTimeoutMs?: number;
  /** A dead instance's relay not connected anywhere after this is down; default 10 s. */
  regoneMs?: number;
  /**
   * After this instance's bus came back, a relay not announced again within this is down; default
   * 60 s: twice the bus's longest reconnection wait, as the other instances may be reconnecting too.
   */
  reannounceMs?: number;
}

/**
 * Every relay of the cluster as one RelayDirectory: the relays connected here (the registry) and
 * those the other instances announce. Allocations on another instance's relay are asked of that
 * instance over the bus; what this instance's relays do is announced to the others.
 */
export class ClusterRelays implements RelayDirectory {
  private readonly remote = new RemoteRelays();
  private readonly requests: RelayRequests;
  /** Allocations made on other instances' relays, so a release goes there. */
  private readonly remoteAllocations = new RemoteAllocations();
  /** Allocations on relays here that other instances' pairs hold. */
  private readonly served = new ServedAllocations();
  private readonly listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    'relay-up': new Set(),
    'relay-down': new Set(),
    expired: new Set(),
    bound: new Set(),
    observed: new Set(),
  };
  private readonly unsubscribe: Array<() => void> = [];
  private readonly regoneMs: number;
  private readonly downTimers = new Set<NodeJS.Timeout>();
  private doubtTimer: NodeJS.Timeout | null = null;
  /** Allocations being claimed where their relay went (`follow`), and where. */
  private readonly reclaiming = new Map<string, string>();

  constructor(
    private readonly local: LocalRelayDirectory,
    private readonly bus: EventBus,
    private readonly opts: ClusterRelaysOptions,
  ) {
    this.requests = new RelayRequests(
      opts.instanceId,
      (e) => this.publish(e),
      opts.requestTimeoutMs ?? 6_000,
    );
    this.regoneMs = opts.regoneMs ?? 10_000;
  }

  start(): void {
    const me = this.opts.instanceId;
    this.unsubscribe.push(this.bus.subscribe((e) => this.onEvent(e)));
    this.unsubscribe.push(this.bus.onReconnected(() => this.resync()));
    this.local.on('relay-up', (relay) => {
      this.remote.gone(this.remote.get(relay.id)?.instance ?? '', relay.id);
      this.announce(relay);
      this.follow(relay.id, me);
      this.emit('relay-up', relay);
    });
    this.local.on('relay-down', (relayId, lost) => {
      this.publish({ kind: 'relay-gone', instance: me, relayId });
      const ours = this.served.own(lost);
      const there = this.remote.get(relayId);
      if (!there) {
        this.emit('relay-down', relayId, lost);
        return;
      }
      // Connected to another instance now, which adopted what it held: ours are claimed there.
      for (const r of ours) {
        const keys: [string, string] = [r.sides[0].publicKey, r.sides[1].publicKey];
        this.remoteAllocations.set(r.allocationId, { instance: me, relayId, accountId: r.accountId, keys });
      }
      this.follow(relayId, there.instance);
    });
    this.local.on('expired', (allocationId) => {
      this.served.delete(allocationId);
      this.publish({ kind: 'relay-expired', instance: me, allocationId });
      this.emit('expired', allocationId);
    });
    this.local.on('bound', (...args) => this.emit('bound', ...args));
    this.local.on('observed', (relayId, publicKey, endpoint) => {
      this.emit('observed', relayId, publicKey, endpoint);
      // Only a shared relay's classifies NATs (a private one sees only its account's devices).
      if (this.local.connected().some((r) => r.id === relayId && r.accountId === null))
        this.publish({ kind: 'relay-observed', instance: me, relayId, publicKey, endpoint });
    });
    this.sync();
  }

  /**
   * What the instances announced while this one's bus was away is lost: both sides announce again,
   * and a relay not announced again within `reannounceMs` (from the last reconnection) left its
   * instance meanwhile: it is down.
   */
  private resync(): void {
    this.remote.doubtAll();
    this.sync();
    if (this.doubtTimer) clearTimeout(this.doubtTimer);
    this.doubtTimer = setTimeout(() => {
      this.doubtTimer = null;
      for (const relay of this.remote.dropDoubted()) {
        this.opts.logger.info({ relayId: relay.id, instance: relay.instance }, 'relay not announced again');
        if (!this.local.isOnline(relay.id)) this.emit('relay-down', relay.id, []);
      }
    }, this.opts.reannounceMs ?? 60_000);
    this.doubtTimer.unref?.();
  }

  /** Announces the relays connected here and asks the other instances for theirs. */
  private sync(): void {
    for (const relay of this.local.connected()) this.announce(relay);
    this.publish({ kind: 'relay-sync', instance: this.opts.instanceId });
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    this.requests.stop();
    for (const t of this.downTimers) clearTimeout(t);
    this.downTimers.clear();
    if (this.doubtTimer) clearTimeout(this.doubtTimer);
  }

  on<K extends keyof Listeners>(event: K, fn: Listeners[K]): void {
    this.listeners[event].add(fn);
  }

  /**
   * A dead instance was taken over. Its relays are forgotten; one that does not reappear (connected
   * to another instance) within `regoneMs` is down and its pairs move. One that does keeps them.
   */
  private instanceGone(instance: string): void {
    for (const relayId of this.remote.instanceGone(instance)) {
      this.opts.logger.info({ relayId, instance }, 'relay of a dead instance: waiting for it elsewhere');
      this.afterRegone(() => {
        if (!this.remote.get(relayId) && !this.local.isOnline(relayId)) this.emit('relay-down', relayId, []);
      });
    }
  }

  private afterRegone(fn: () => void): void {
    const timer = setTimeout(() => {
      this.downTimers.delete(timer);
      fn();
    }, this.regoneMs);
    timer.unref?.();
    this.downTimers.add(timer);
  }

  /** A shared relay with a reflector, here first, else another instance's (the lowest id). */
  sharedReflector(): { relayId: string; reflector: ReflectorInfo } | undefined {
    const here = this.local.sharedReflector();
    if (here) return here;
    const shared = this.remote
      .all()
      .filter((r) => r.accountId === null && r.info.reflector && !this.local.isOnline(r.id))
      .sort((x, y) => (x.id < y.id ? -1 : 1))[0];
    return shared?.info.reflector ? { relayId: shared.id, reflector: shared.info.reflector } : undefined;
  }

  // --- RelayDirectory ---------------------------------------------------------------------------
  /** The same rule as the registry's, over every instance's relays: private ones alone, if any. */
  relaysFor(accountId: string): RelayHandle[] {
    const here = this.local.connected();
    const ids = new Set(here.map((r) => r.id));
    const all: RelayHandle[] = [...here, ...this.remote.all().filter((r) => !ids.has(r.id))];
    const own = all.filter((r) => r.accountId === accountId);
    if (own.length > 0 || this.local.hasPrivateRelays(accountId)) return own;
    return all.filter((r) => r.accountId === null);
  }

  netmapRelays(accountId: string): NetmapRelay[] {
    return this.relaysFor(accountId).map(toNetmapRelay);
  }

  async allocate(
    relayId: string,
    accountId: string,
    keys: [string, string],
    idleTimeoutMs: number,
  ): Promise<RelayAllocationRecord> {
    const there = this.remoteOf(relayId);
    if (!there) return this.local.allocate(relayId, accountId, keys, idleTimeoutMs);
    const reply = await this.requests.ask(there.instance, {
      op: 'allocate',
      relayId,
      accountId,
      keys,
      idleTimeoutMs,
    });
    if (!reply.ok) throw new Error(reply.error);
    if (!reply.record) throw new Error(`relay ${there.name} gave no allocation`);
    this.remoteAllocations.set(reply.record.allocationId, {
      instance: there.instance,
      relayId,
      accountId,
      keys,
    });
    return reply.record;
  }

  /** Adopted here first; else any allocation another instance's relays hold for the pair. */
  async claimAdopted(
    accountId: string,
    keys: [string, string],
    exclude: readonly string[] = [],
  ): Promise<AdoptedAllocation | null> {
    const here = await this.local.claimHeld(accountId, keys, exclude);
    if (here) return here;
    const instances = new Set(
      this.relaysFor(accountId)
        .map((r) => this.remoteOf(r.id)?.instance)
        .filter((i) => i !== undefined),
    );
    const replies = await Promise.all(
      [...instances].map(async (instance) => ({
        instance,
        reply: await this.requests.ask(instance, { op: 'claim', accountId, keys, exclude: [...exclude] }),
      })),
    );
    for (const { instance, reply } of replies) {
      const relay = reply.ok && reply.record ? this.remote.get(reply.record.relayId) : undefined;
      if (!relay || !reply.ok || !reply.record) continue;
      this.remoteAllocations.set(reply.record.allocationId, {
        instance,
        relayId: reply.record.relayId,
        accountId,
        keys,
      });
      return { record: reply.record, relay };
    }
    return null;
  }

  /** Served for another instance's pair until now (the owner moved here): ours to follow now. */
  claimKept(allocationId: string): void {
    this.served.delete(allocationId);
  }

  release(allocationId: string): void {
    const held = this.remoteAllocations.get(allocationId);
    this.remoteAllocations.delete(allocationId);
    this.releaseAt(allocationId, held?.instance ?? this.opts.instanceId);
  }

  private releaseAt(allocationId: string, instance: string): void {
    if (instance === this.opts.instanceId) {
      this.local.release(allocationId);
      return;
    }
    this.requests.tell(instance, { op: 'release', allocationId });
  }

  /**
   * A relay holding allocations of this instance's pairs came back at another instance (or here),
   * which adopted what it reported and releases what no pair claims within its grace: claim ours
   * there. One that cannot be claimed as it was expires, and its pair moves to a relay again.
   */
  private follow(relayId: string, instance: string): void {
    for (const [id, held] of this.remoteAllocations.movedAway(relayId, instance)) {
      // The relay announced again before the claim's answer (instances re-announce after their bus
      // came back): a second claim would get the same allocation and release it as not its own.
      if (this.reclaiming.get(id) === instance) continue;
      this.reclaiming.set(id, instance);
      void this.reclaim(id, held, instance).finally(() => {
        if (this.reclaiming.get(id) === instance) this.reclaiming.delete(id);
      });
    }
  }

  private async reclaim(id: string, held: RemoteAllocation, instance: string): Promise<void> {
    const { accountId, keys } = held;
    const record =
      instance === this.opts.instanceId
        ? ((await this.local.claimHeld(accountId, keys, []))?.record ?? null)
        : await this.requests
            .ask(instance, { op: 'claim', accountId, keys, exclude: [] })
            .then((r) => (r.ok ? r.record : null));
    // Released (or followed elsewhere) meanwhile: what was claimed for it goes.
    const current = this.remoteAllocations.get(id) === held;
    if (current && record?.allocationId === id) {
      if (instance === this.opts.instanceId) this.remoteAllocations.delete(id);
      else this.remoteAllocations.set(id, { ...held, instance });
      return;
    }
    // Only ours: a claim matches by keys, and another allocation for them may be the owner's now.
    if (record?.allocationId === id) this.releaseAt(id, instance);
    if (!current) return;
    this.opts.logger.info(
      { allocationId: id, relayId: held.relayId, instance },
      'relay moved without our allocation',
    );
    this.remoteAllocations.delete(id);
    this.emit('expired', id);
  }

  // --- the bus ----------------------------------------------------------------------------------
  private onEvent(e: BrokerEvent): void {
    const me = this.opts.instanceId;
    switch (e.kind) {
      case 'relay-present': {
        if (e.instance === me) return;
        const relay = this.remote.present(e.instance, e.relay, e.allocations);
        this.local.seenElsewhere(e.relay.id);
        this.follow(e.relay.id, e.instance);
        if (relay !== 'known' && !this.local.isOnline(relay.id)) this.emit('relay-up', relay);
        return;
      }
      case 'relay-gone':
        if (e.instance !== me && this.remote.gone(e.instance, e.relayId) && !this.local.isOnline(e.relayId))
          this.emit('relay-down', e.relayId, []);
        return;
      case 'instance-gone':
        if (e.instance !== me) this.instanceGone(e.instance);
        return;
      case 'relay-observed':
        if (e.instance !== me) this.emit('observed', e.relayId, e.publicKey, e.endpoint);
        return;
      case 'relay-sync':
        if (e.instance !== me) for (const relay of this.local.connected()) this.announce(relay);
        return;
      case 'relay-expired':
        if (e.instance !== me && this.remoteAllocations.delete(e.allocationId))
          this.emit('expired', e.allocationId);
        return;
      case 'relay-request':
        if (e.to === me) void this.serve(e.from, e.requestId, e.request);
        return;
      case 'relay-reply':
        if (e.to === me) this.requests.answered(e.requestId, e.result);
        return;
      default:
        return;
    }
  }

  /** Another instance's request for one of the relays connected here. */
  private async serve(from: string, requestId: string, request: RelayRequest): Promise<void> {
    const result = await answerRelayRequest(this.local, this.served, request);
    if (result) this.publish({ kind: 'relay-reply', to: from, requestId, result });
  }

  private remoteOf(relayId: string): RemoteRelay | undefined {
    return this.local.isOnline(relayId) ? undefined : this.remote.get(relayId);
  }

  private announce(relay: RelayHandle): void {
    const { id, name, accountId, publicAddress, tcp } = relay;
    const reflector = this.local.reflectorOf(id);
    this.publish({
      kind: 'relay-present',
      instance: this.opts.instanceId,
      relay: {
        id,
        name,
        accountId,
        publicAddress,
        ...(tcp ? { tcp } : {}),
        ...(reflector ? { reflector } : {}),
      },
      allocations: relay.allocations(),
    });
  }

  private publish(event: BrokerEvent): void {
    this.bus.publish(event).catch((err: Error) => {
      this.opts.logger.warn({ kind: event.kind, err: err.message }, 'broker event not published');
    });
  }

  private emit<K extends keyof Listeners>(event: K, ...args: Parameters<Listeners[K]>): void {
    for (const fn of this.listeners[event]) (fn as (...a: Parameters<Listeners[K]>) => void)(...args);
  }
}
