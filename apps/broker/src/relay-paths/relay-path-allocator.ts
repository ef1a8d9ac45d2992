import type { PathReportMessage, RelayPathMessage, RelayReleaseMessage } from '@trellis/proto';
import type { Logger } from 'pino';
import type { PunchDevice } from '../punch/punch-coordinator';
import type { RelayAllocationRecord, RelayDirectory, RelayHandle } from '../relay/relay-directory';
import { type RelayRttTable, rankRelays, relayEndpoint } from './relay-choice';
import { relayPathMessage } from './relay-messages';
import { needsRelayNow } from './relay-need';
import { cancelRelease, clearRetry, type RelayPair, RelayPairs, type RelayReason } from './relay-pairs';

export interface RelayPathAllocatorOptions {
  accountId: string;
  directory: RelayDirectory;
  /** The device as the netmap has it now (undefined: gone). */
  device(id: string): PunchDevice | undefined;
  /** Devices with a control connection on this instance. */
  connected(): Iterable<string>;
  /** Whether one device is (a lookup; without it `connected()` is scanned). */
  isConnected?(id: string): boolean;
  send(deviceId: string, msg: RelayPathMessage | RelayReleaseMessage): void;
  /** What the device's agent last measured to each relay (`netinfo.relayRttMs`). */
  relayRtts(deviceId: string): RelayRttTable | undefined;
  logger: Logger;
  now?: () => number;
  /** The broker runs endpoint reflectors: a device without a reflexive candidate sends no UDP. */
  reflectorsRun?: boolean;
  /**
   * The endpoints this instance's reflectors saw a key at since `since` (null: none). Agents
   * re-initiate to the reflectors when they connect, so none since means no UDP gets out, even when
   * the netmap still holds a reflexive address from an earlier network.
   */
  reflexiveSeenSince?(publicKey: string, since: number): readonly string[] | null;
  /** How long a device may come online without a reflexive candidate before its network counts as UDP-blocked. */
  udpWaitMs?: number;
  /** Both agents must report a direct path for this long before the relay is released. */
  directGraceMs?: number;
  /** A device offline this long loses its relayed pairs (a quicker reconnect keeps them). */
  offlineGraceMs?: number;
  /** When no relay could allocate, try again after this long. */
  retryMs?: number;
  /** Asked of the relay: an allocation idle this long is closed and reported expired. */
  idleTimeoutMs?: number;
}

/**
 * The broker's relay fallback for the pairs of one account whose devices are connected here
 * (ARCHITECTURE "Relay by port allocation"). A pair is relayed at once when a direct path cannot
 * work (both NATs symmetric, or a side's network blocks UDP), and after a failed punch (punching
 * goes on with backoff meanwhile). The relay is released once both agents have reported a direct
 * path for `directGraceMs`, when a device stays offline for `offlineGraceMs`, or when it expires.
 */
export class RelayPathAllocator {
  private readonly pairs = new RelayPairs();
  private readonly onlineAt = new Map<string, number>();
  private readonly udpTimers = new Map<string, NodeJS.Timeout>();
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly reflectorsRun: boolean;
  private readonly udpWaitMs: number;
  private readonly directGraceMs: number;
  private readonly offlineGraceMs: number;
  private readonly retryMs: number;
  private readonly idleTimeoutMs: number;
  private disposed = false;
  /** Relays already reported as unusable. */
  private readonly unusable = new Set<string>();

  constructor(private readonly opts: RelayPathAllocatorOptions) {
    this.now = opts.now ?? Date.now;
    this.reflectorsRun = opts.reflectorsRun ?? false;
    this.udpWaitMs = opts.udpWaitMs ?? 1_500;
    this.directGraceMs = opts.directGraceMs ?? 10_000;
    this.offlineGraceMs = opts.offlineGraceMs ?? 15_000;
    this.retryMs = opts.retryMs ?? 10_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 600_000;
  }

  /** A device (re)connected: its agent starts from scratch, so a relayed pair's message is sent again. */
  deviceOnline(id: string): void {
    this.onlineAt.set(id, this.now());
    this.clearTimer(this.offlineTimers, id);
    this.clearTimer(this.udpTimers, id);
    if (this.reflectorsRun)
      this.udpTimers.set(
        id,
        setTimeout(() => {
          this.udpTimers.delete(id);
          this.deviceChanged(id);
        }, this.udpWaitMs),
      );
    for (const pair of this.pairs.of(id)) {
      pair.directSides.clear();
      cancelRelease(pair);
      if (pair.active) this.sendRelay(pair, id);
    }
    this.deviceChanged(id);
  }

  /** The device's candidates or NAT type changed: decide again for each pair with a connected peer. */
  deviceChanged(id: string): void {
    const connected = new Set(this.opts.connected());
    if (!connected.has(id)) return;
    this.resendChangedTransports(id);
    for (const other of connected) if (other !== id) this.evaluate(id, other);
  }

  /**
   * A reflector saw UDP from the device (every observation: kept cheap): relayed pairs that gave it
   * the TCP fallback move it to UDP.
   */
  reflexiveObserved(id: string): void {
    const onTcp = this.pairs.of(id).filter((p) => p.active && p.tcpSides.has(id));
    if (onTcp.length === 0 || !this.isConnected(id) || this.wantsTcp(id)) return;
    for (const pair of onTcp) this.sendRelay(pair, id);
  }

  private resendChangedTransports(id: string): void {
    const tcp = this.wantsTcp(id);
    for (const pair of this.pairs.of(id))
      if (pair.active && tcp !== pair.tcpSides.has(id)) this.sendRelay(pair, id);
  }

  /** The control connection closed: relayed pairs are kept for `offlineGraceMs`. */
  deviceOffline(id: string): void {
    this.onlineAt.delete(id);
    this.clearTimer(this.udpTimers, id);
    let relayed = false;
    for (const pair of this.pairs.of(id)) {
      pair.directSides.delete(id);
      cancelRelease(pair);
      if (pair.reason !== null) relayed = true;
      else this.pairs.delete(pair);
    }
    if (!relayed || this.offlineTimers.has(id)) return;
    this.offlineTimers.set(
      id,
      setTimeout(() => {
        this.offlineTimers.delete(id);
        for (const pair of this.pairs.of(id)) this.release(pair, 'device offline', true);
      }, this.offlineGraceMs),
    );
  }

  /** The device left the account: its relays go at once. */
  deviceRemoved(id: string): void {
    this.onlineAt.delete(id);
    this.clearTimer(this.udpTimers, id);
    this.clearTimer(this.offlineTimers, id);
    for (const pair of this.pairs.of(id)) this.release(pair, 'device removed', true);
  }

  /** An agent's path outcome: direct sides count towards a release, a failure brings a relay. */
  report(deviceId: string, r: PathReportMessage): void {
    if (deviceId === r.peerId || !this.opts.device(deviceId) || !this.opts.device(r.peerId)) return;
    const pair = this.pairs.getOrAdd(deviceId, r.peerId);
    if (r.result === 'direct') {
      pair.directSides.add(deviceId);
      if (pair.directSides.size === 2 && pair.reason !== null && !pair.releaseTimer) {
        pair.releaseTimer = setTimeout(() => {
          pair.releaseTimer = null;
          this.release(pair, 'direct path', false);
        }, this.directGraceMs);
      }
      return;
    }
    pair.directSides.delete(deviceId);
    cancelRelease(pair);
    if (r.result === 'failed' && pair.reason === null && this.bothConnected(pair))
      this.want(pair, 'punch-failed');
  }

  /** The relay closed an idle allocation: both agents stop using it. Returns whether it was this account's. */
  expired(allocationId: string): boolean {
    for (const pair of this.pairs.values()) {
      if (pair.active?.record.allocationId !== allocationId) continue;
      this.tellReleased(pair, allocationId);
      pair.active = null;
      this.release(pair, 'allocation expired', false);
      return true;
    }
    return false;
  }

  /** A relay came up: pairs that found none to allocate on try again. */
  relayUp(): void {
    for (const pair of this.pairs.values())
      if (pair.reason !== null && !pair.active && !pair.allocating && this.bothConnected(pair))
        this.allocate(pair, new Set());
  }

  /** A relay went away for good: its pairs move to another relay and both agents get the new one. */
  relayDown(relayId: string): void {
    for (const pair of this.pairs.values()) {
      if (pair.active?.relay.id !== relayId) continue;
      pair.moving = pair.active.record;
      pair.active = null;
      this.allocate(pair, new Set([relayId]));
    }
  }

  /**
   * Stops deciding (no device of the account is connected here, or the broker stops). Allocations
   * are left to the relay's idle timeout rather than released: agents keep forwarding through them
   * while the broker is away, and may be reconnecting to another instance.
   */
  dispose(): void {
    this.disposed = true;
    for (const t of [...this.udpTimers.values(), ...this.offlineTimers.values()]) clearTimeout(t);
    this.udpTimers.clear();
    this.offlineTimers.clear();
    this.pairs.clear();
  }

  private evaluate(x: string, y: string): void {
    const pair = this.pairs.get(x, y);
    if (pair && (pair.reason !== null || pair.directSides.size === 2)) return;
    const a = this.opts.device(x);
    const b = this.opts.device(y);
    if (!a || !b) return;
    const now = this.now();
    const view = (d: PunchDevice) => ({
      ...d,
      onlineForMs: now - (this.onlineAt.get(d.id) ?? now),
      udpUnseen: this.udpBlocked(d),
    });
    if (!needsRelayNow(view(a), view(b), { reflectorsRun: this.reflectorsRun, udpWaitMs: this.udpWaitMs }))
      return;
    this.want(pair ?? this.pairs.getOrAdd(x, y), 'no-direct-path');
  }

  private want(pair: RelayPair, reason: RelayReason): void {
    pair.reason = reason;
    this.opts.logger.info({ a: pair.a, b: pair.b, reason }, 'relaying pair');
    this.allocate(pair, new Set());
  }

  private allocate(pair: RelayPair, exclude: Set<string>): void {
    clearRetry(pair);
    const a = this.opts.device(pair.a);
    const b = this.opts.device(pair.b);
    if (!a || !b) return;
    pair.allocating = true;
    const generation = pair.generation;
    const keys: [string, string] = [a.publicKey, b.publicKey];
    // First an allocation a relay already held for the pair when it connected (this broker
    // restarted): the agents keep their relay and port. The relays are ranked after that wait.
    void this.opts.directory.claimAdopted(this.opts.accountId, keys).then((adopted) => {
      if (adopted) return this.tryRelays(pair, generation, [adopted.relay], keys, adopted.record);
      const relays = this.opts.directory
        .relaysFor(this.opts.accountId)
        .filter((r) => !exclude.has(r.id) && this.usable(r));
      const ranked = rankRelays(relays, this.opts.relayRtts(pair.a), this.opts.relayRtts(pair.b));
      return this.tryRelays(pair, generation, ranked, keys);
    });
  }

  private async tryRelays(
    pair: RelayPair,
    generation: number,
    ranked: RelayHandle[],
    keys: [string, string],
    adopted?: RelayAllocationRecord,
  ): Promise<void> {
    const { directory, accountId, logger } = this.opts;
    for (const relay of ranked) {
      let record: RelayAllocationRecord;
      try {
        record = adopted ?? (await directory.allocate(relay.id, accountId, keys, this.idleTimeoutMs));
      } catch (err) {
        logger.warn({ a: pair.a, b: pair.b, relay: relay.name, err: String(err) }, 'relay allocation failed');
        continue;
      }
      if (pair.generation !== generation || this.disposed) {
        directory.release(record.allocationId);
        return;
      }
      pair.allocating = false;
      pair.active = { record, relay };
      const moved = pair.moving;
      pair.moving = null;
      for (const id of [pair.a, pair.b]) this.sendRelay(pair, id);
      logger.info(
        { a: pair.a, b: pair.b, relay: relay.name, allocationId: record.allocationId, port: record.port },
        adopted ? 'relay path adopted' : moved ? 'relay path moved' : 'relay path allocated',
      );
      return;
    }
    if (pair.generation !== generation || this.disposed) return;
    pair.allocating = false;
    if (pair.moving) this.tellReleased(pair, pair.moving.allocationId);
    pair.moving = null;
    if (ranked.length === 0) {
      // A relay coming up (relayUp) tries again.
      logger.warn({ a: pair.a, b: pair.b }, 'no relay available for the pair');
      return;
    }
    logger.warn({ a: pair.a, b: pair.b, retryInMs: this.retryMs }, 'no relay could allocate for the pair');
    pair.retryTimer = setTimeout(() => {
      pair.retryTimer = null;
      if (pair.reason !== null && !pair.active && !pair.allocating && this.bothConnected(pair))
        this.allocate(pair, new Set());
    }, this.retryMs);
  }

  /** Agents point WireGuard at an IP: a relay announcing a host name cannot be used (said once). */
  private usable(relay: RelayHandle): boolean {
    if (relayEndpoint(relay, 1) !== null) return true;
    if (!this.unusable.has(relay.id)) {
      this.unusable.add(relay.id);
      this.opts.logger.warn(
        { relay: relay.name, publicAddress: relay.publicAddress },
        'relay skipped: its public address is not an IP address',
      );
    }
    return false;
  }

  private sendRelay(pair: RelayPair, to: string): void {
    if (!pair.active || !this.isConnected(to)) return;
    const self = this.opts.device(to);
    const peer = this.opts.device(to === pair.a ? pair.b : pair.a);
    if (!self || !peer) return;
    const msg = relayPathMessage(peer, pair.active.record, pair.active.relay, this.wantsTcp(to));
    if (!msg) return;
    if (msg.tcp) pair.tcpSides.add(to);
    else pair.tcpSides.delete(to);
    this.opts.send(to, msg);
  }

  /**
   * Whether the device should reach a relay over TCP: no UDP of it seen since it came online, for
   * the whole wait (a device that just came online, e.g. the peer of a blocked one, gets UDP first;
   * if nothing is seen by the end of the wait it is told again, with the fallback).
   */
  private wantsTcp(id: string): boolean {
    const d = this.opts.device(id);
    const since = this.onlineAt.get(id);
    if (!d || since === undefined || !this.udpBlocked(d)) return false;
    return this.now() - since >= this.udpWaitMs;
  }

  /** Stops relaying the pair: both connected agents are told, then the relay frees the port. */
  private release(pair: RelayPair, why: string, forget: boolean): void {
    cancelRelease(pair);
    clearRetry(pair);
    pair.generation += 1;
    pair.allocating = false;
    pair.moving = null;
    const active = pair.active;
    pair.active = null;
    const wasRelayed = pair.reason !== null;
    pair.reason = null;
    if (active) {
      this.tellReleased(pair, active.record.allocationId);
      this.opts.directory.release(active.record.allocationId);
    }
    if (wasRelayed) this.opts.logger.info({ a: pair.a, b: pair.b, why }, 'relay path released');
    if (forget) this.pairs.delete(pair);
  }

  private tellReleased(pair: RelayPair, allocationId: string): void {
    for (const [to, peerId] of [
      [pair.a, pair.b],
      [pair.b, pair.a],
    ] as const)
      if (this.isConnected(to)) this.opts.send(to, { type: 'relay-release', peerId, allocationId });
  }

  /** No UDP from the device reached the reflectors (ever, or since it came online). */
  private udpBlocked(d: PunchDevice): boolean {
    if (!this.reflectorsRun) return false;
    const since = this.onlineAt.get(d.id);
    if (since !== undefined && this.opts.reflexiveSeenSince)
      return this.opts.reflexiveSeenSince(d.publicKey, since) === null;
    // Without observations: a reflexive address (listed as port-mapped when the gateway maps 1:1).
    return !d.candidates.some((c) => c.kind === 'reflexive' || c.kind === 'portmapped');
  }

  private isConnected(id: string): boolean {
    if (this.opts.isConnected) return this.opts.isConnected(id);
    for (const c of this.opts.connected()) if (c === id) return true;
    return false;
  }

  private bothConnected(pair: RelayPair): boolean {
    return this.isConnected(pair.a) && this.isConnected(pair.b);
  }

  private clearTimer(timers: Map<string, NodeJS.Timeout>, id: string): void {
    const t = timers.get(id);
    if (t) clearTimeout(t);
    timers.delete(id);
  }
}
