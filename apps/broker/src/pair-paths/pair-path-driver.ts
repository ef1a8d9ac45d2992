import { randomBytes } from 'node:crypto';
import type { PathReportMessage, PunchMessage, RelayPathMessage, RelayReleaseMessage } from '@trellis/proto';
import type { Logger } from 'pino';
import type { RelayAllocationRecord, RelayDirectory, RelayHandle } from '../relay/relay-directory';
import { PairPathCore } from './pair-path-core';
import {
  DEFAULT_PAIR_PATH_OPTIONS,
  type PairDevice,
  type PairEffect,
  type PairEvent,
  type PairPathOptions,
  type PunchEffect,
} from './pair-types';
import { type RelayRttTable, rankRelays, relayEndpoint } from './relay-choice';

/** Added to the slower control round trip for a punch's start: event loop and UAPI latency. */
const START_MARGIN_MS = 25;

export type PairPathTimings = Partial<
  Omit<PairPathOptions, 'reflectorsRun' | 'tracksReflexive' | 'relaysEnabled' | 'newAttemptId'>
> & {
  /** The punch's start ahead when a round trip is unknown, and its cap otherwise. */
  startDelayMs?: number;
};

export interface PairPathIo {
  accountId: string;
  send(deviceId: string, msg: PunchMessage | RelayPathMessage | RelayReleaseMessage): void;
  /** The control connection's measured round trip (null: not yet). */
  rttOf(deviceId: string): number | null;
  /** What the device's agent measured to each relay (`netinfo.relayRttMs`). */
  relayRtts(deviceId: string): RelayRttTable | undefined;
  /** The endpoints this instance's reflectors saw a key at since `since` (null: none). */
  reflexiveSeenSince?(publicKey: string, since: number): readonly string[] | null;
  /** The broker runs endpoint reflectors. */
  reflectorsRun: boolean;
  /** The relays connected to this instance; without it no pair is relayed. */
  directory?: RelayDirectory;
  logger: Logger;
  now?: () => number;
  timings?: PairPathTimings;
  /** Asked of the relay: an allocation idle this long is closed and reported expired. */
  idleTimeoutMs?: number;
}

/**
 * The I/O shell of one account's PairPathCore: feeds it events with the time, keeps one timer for
 * its next due time, sends its messages (stamping punches with a start time from the two control
 * round trips) and asks relays for allocations, feeding the answers back.
 */
export class PairPathDriver {
  private readonly core: PairPathCore;
  private readonly now: () => number;
  private readonly startDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private timerAt: number | null = null;
  private disposed = false;
  /** Relays already reported as unusable. */
  private readonly unusable = new Set<string>();

  constructor(private readonly io: PairPathIo) {
    this.now = io.now ?? Date.now;
    const { startDelayMs, ...timings } = io.timings ?? {};
    this.startDelayMs = startDelayMs ?? 300;
    this.core = new PairPathCore({
      ...DEFAULT_PAIR_PATH_OPTIONS,
      ...timings,
      reflectorsRun: io.reflectorsRun,
      tracksReflexive: io.reflexiveSeenSince !== undefined,
      relaysEnabled: io.directory !== undefined,
      newAttemptId: () => `punch:${randomBytes(6).toString('hex')}`,
    });
  }

  online(device: PairDevice): void {
    this.handle({ kind: 'online', device });
  }
  offline(id: string): void {
    this.handle({ kind: 'offline', id });
  }
  removed(id: string): void {
    this.handle({ kind: 'removed', id });
  }
  changed(device: PairDevice): void {
    this.handle({ kind: 'changed', device });
  }
  want(from: string, peerId: string, relayed = false): void {
    this.handle({ kind: 'want', from, peerId, relayed });
  }
  pathReport(from: string, report: PathReportMessage): void {
    this.handle({ kind: 'path-report', from, report });
  }
  relayUp(): void {
    this.handle({ kind: 'relay-up' });
  }
  relayDown(relayId: string): void {
    this.handle({ kind: 'relay-down', relayId });
  }

  /** The relay closed an idle allocation; returns whether it was one of this account's. */
  expired(allocationId: string): boolean {
    if (!this.core.hasAllocation(allocationId)) return false;
    this.handle({ kind: 'expired', allocationId });
    return true;
  }

  /** This instance's reflectors saw the device's key (on every packet: kept cheap). */
  reflexiveObserved(id: string, publicKey: string): void {
    const since = this.core.onlineSince(id);
    if (since === undefined || !this.io.reflexiveSeenSince) return;
    const endpoints = this.io.reflexiveSeenSince(publicKey, since);
    if (endpoints) this.handle({ kind: 'reflexive-seen', id, endpoints });
  }

  /** Every endpoint another instance's reflectors saw the device at since it came online there. */
  reflexiveSeen(id: string, endpoints: readonly string[]): void {
    if (this.core.onlineSince(id) !== undefined) this.handle({ kind: 'reflexive-seen', id, endpoints });
  }

  /** Pairs held (metrics, tests). */
  get pairCount(): number {
    return this.core.pairCount;
  }

  /**
   * Stops deciding. Allocations are left to the relay's idle timeout rather than released: agents
   * keep forwarding through them while the broker is away, and may reconnect to another instance.
   */
  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private handle(event: PairEvent): void {
    if (this.disposed) return;
    for (const effect of this.core.handle(event, this.now())) this.run(effect);
    this.arm();
  }

  private arm(): void {
    const at = this.core.nextDueAt();
    if (at === this.timerAt && this.timer) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === null || this.disposed) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = null;
        this.handle({ kind: 'tick' });
      },
      Math.max(0, at - this.now()),
    );
  }

  private run(effect: PairEffect): void {
    switch (effect.kind) {
      case 'punch':
        this.punch(effect);
        return;
      case 'send':
        this.io.send(effect.to, effect.msg);
        return;
      case 'allocate':
        void this.allocate(effect);
        return;
      case 'release':
        this.io.directory?.release(effect.allocationId);
        return;
      case 'log':
        this.io.logger[effect.level](effect.fields, effect.msg);
        return;
    }
  }

  private punch(p: PunchEffect): void {
    const startAt = this.now() + this.startDelay(p.a.id, p.b.id);
    const message = (self: PairDevice, peer: PairDevice, candidates: PunchMessage['candidates']) => {
      // A plain literal, so the compiler checks every field against proto's PunchMessage.
      const msg: PunchMessage = {
        type: 'punch',
        attemptId: p.attemptId,
        peerId: peer.id,
        peerPublicKey: peer.publicKey,
        candidates,
        startAt,
        deadlineMs: p.deadlineMs,
      };
      if (p.leader !== null) msg.leader = p.leader === self.id;
      return msg;
    };
    this.io.send(p.a.id, message(p.a, p.b, p.forA));
    this.io.send(p.b.id, message(p.b, p.a, p.forB));
    this.io.logger.info(
      { a: p.a.id, b: p.b.id, attemptId: p.attemptId, forA: p.forA, forB: p.forB },
      'punch sent',
    );
  }

  private startDelay(a: string, b: string): number {
    const ra = this.io.rttOf(a);
    const rb = this.io.rttOf(b);
    if (ra === null || rb === null) return this.startDelayMs;
    return Math.min(this.startDelayMs, Math.ceil(Math.max(ra, rb)) + START_MARGIN_MS);
  }

  /** Tries the relays that may serve the account, best first; the first allocation wins. */
  private async allocate(e: Extract<PairEffect, { kind: 'allocate' }>): Promise<void> {
    const { directory, accountId, logger } = this.io;
    if (!directory) return;
    const keys: [string, string] = [e.a.publicKey, e.b.publicKey];
    // First an allocation a relay already held for the pair when it connected (this broker
    // restarted): the agents keep their relay and port. The relays are ranked after that wait.
    const adopted = await directory.claimAdopted(accountId, keys, e.exclude);
    // Another instance owns the account now: what was claimed stays (as dispose() leaves
    // allocations) for that owner to claim; it may hold it already, under the agents.
    if (this.disposed) return;
    if (adopted && e.exclude.includes(adopted.relay.id)) {
      directory.release(adopted.record.allocationId);
    } else if (adopted) {
      const { record, relay } = adopted;
      directory.claimKept?.(record.allocationId);
      logger.info(
        { a: e.a.id, b: e.b.id, relay: relay.name, allocationId: record.allocationId },
        'relay path adopted',
      );
      this.handle({ kind: 'allocated', pairKey: e.pairKey, generation: e.generation, record, relay });
      return;
    }
    if (this.disposed) return;
    const relays = directory.relaysFor(accountId).filter((r) => !e.exclude.includes(r.id) && this.usable(r));
    const ranked = rankRelays(relays, this.io.relayRtts(e.a.id), this.io.relayRtts(e.b.id));
    for (const relay of ranked) {
      let record: RelayAllocationRecord;
      try {
        record = await directory.allocate(relay.id, accountId, keys, this.io.idleTimeoutMs ?? 600_000);
      } catch (err) {
        if (this.disposed) return;
        logger.warn({ a: e.a.id, b: e.b.id, relay: relay.name, err: String(err) }, 'relay allocation failed');
        continue;
      }
      if (this.disposed) {
        directory.release(record.allocationId);
        return;
      }
      this.handle({ kind: 'allocated', pairKey: e.pairKey, generation: e.generation, record, relay });
      return;
    }
    this.handle({
      kind: 'allocation-failed',
      pairKey: e.pairKey,
      generation: e.generation,
      hadRelays: ranked.length > 0,
    });
  }

  /** Agents point WireGuard at an IP: a relay announcing a host name cannot be used (said once). */
  private usable(relay: RelayHandle): boolean {
    if (relayEndpoint(relay, 1) !== null) return true;
    if (!this.unusable.has(relay.id)) {
      this.unusable.add(relay.id);
      this.io.logger.warn(
        { relay: relay.name, publicAddress: relay.publicAddress },
        'relay skipped: its public address is not an IP address',
      );
    }
    return false;
  }
}
