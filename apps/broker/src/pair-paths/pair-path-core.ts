import { CoreContext, type TimerItem } from './core-context';
import { type DeviceRecord, type PairRecord, PairTable } from './pair-records';
import {
  type PairDevice,
  type PairEffect,
  type PairEvent,
  type PairPathOptions,
  pairKey,
} from './pair-types';
import { firePunch, isFresh, punchFailed, punchInFlight, resetPunch, schedulePunch } from './punch-part';
import {
  allocated,
  allocationFailed,
  evaluateRelay,
  relayExpired,
  relayLost,
  releaseRelay,
  resendIfTransportChanged,
  retryRelay,
  sendRelay,
  wantRelay,
} from './relay-part';
import { TimerQueue } from './timer-queue';

/**
 * The broker's path logic for the device pairs of one account, without I/O (ARCHITECTURE "Hole
 * punching, coordinated by the broker" and "Relay by port allocation"). Each pair has one record
 * holding its punch part and its relay part; a device's events touch only its own pairs. Inputs
 * are events with the time they happen at; outputs are effects the driver carries out (messages to
 * agents, relay allocations) and one next due time for its single timer.
 */
export class PairPathCore {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly table = new PairTable(this.devices);
  private readonly timers = new TimerQueue<TimerItem>();
  private readonly ctx: CoreContext;

  constructor(opts: PairPathOptions) {
    this.ctx = new CoreContext(opts, this.devices, this.table, this.timers);
  }

  handle(event: PairEvent, now: number): PairEffect[] {
    const ctx = this.ctx;
    ctx.now = now;
    ctx.effects = [];
    this.apply(event);
    this.fireDue();
    return ctx.effects;
  }

  /** When `tick` next has something to do (null: nothing scheduled). */
  nextDueAt(): number | null {
    return this.timers.peek();
  }

  /** When the device came online here (the driver asks the reflectors what they saw since). */
  onlineSince(id: string): number | undefined {
    return this.ctx.online(id)?.presence.since;
  }

  hasAllocation(allocationId: string): boolean {
    return this.table.byAllocation.has(allocationId);
  }

  /** Read-only views for the driver's metrics and the tests' invariants. */
  get pairCount(): number {
    return this.table.size;
  }
  get deviceCount(): number {
    return this.devices.size;
  }
  pairs(): Iterable<Readonly<PairRecord>> {
    return this.table.values();
  }
  device(id: string): Readonly<DeviceRecord> | undefined {
    return this.devices.get(id);
  }

  private apply(e: PairEvent): void {
    const ctx = this.ctx;
    switch (e.kind) {
      case 'online':
        this.online(e.device);
        return;
      case 'offline':
        this.offline(e.id);
        return;
      case 'removed':
        this.removed(e.id);
        return;
      case 'changed':
        this.changed(e.device);
        return;
      case 'reflexive-seen':
        this.reflexiveSeen(e.id, e.endpoints);
        return;
      case 'want':
        this.want(e.from, e.peerId, e.relayed);
        return;
      case 'path-report':
        this.report(e.from, e.report);
        return;
      case 'relay-up':
        for (const pair of [...this.table.relayed]) retryRelay(ctx, pair);
        return;
      case 'relay-down':
        for (const pair of [...this.table.relayed]) relayLost(ctx, pair, e.relayId);
        return;
      case 'expired': {
        const pair = this.table.byAllocation.get(e.allocationId);
        if (!pair) return;
        relayExpired(ctx, pair);
        this.prune(pair);
        return;
      }
      case 'allocated':
        allocated(ctx, this.table.get(e.pairKey), e.generation, e.record, e.relay);
        return;
      case 'allocation-failed':
        allocationFailed(ctx, this.table.get(e.pairKey), e.generation, e.hadRelays);
        return;
      case 'tick':
        return;
    }
  }

  /** A device (re)connected: its agent starts from scratch, so pairs are punched and told again. */
  private online(view: PairDevice): void {
    const { ctx } = this;
    const udpCheckAt = ctx.opts.reflectorsRun ? ctx.now + ctx.opts.udpWaitMs : null;
    const presence = { state: 'online' as const, since: ctx.now, seen: [], udpCheckAt };
    let rec = this.devices.get(view.id);
    if (rec) {
      rec.view = view;
      rec.presence = presence;
    } else {
      rec = { view, presence, pairs: new Set() };
      this.devices.set(view.id, rec);
    }
    if (udpCheckAt !== null) this.timers.push(udpCheckAt, { kind: 'udp', id: view.id });
    for (const pair of rec.pairs) {
      pair.direct.clear();
      pair.releaseAt = null;
      resetPunch(ctx, pair);
      sendRelay(ctx, pair, view.id);
      retryRelay(ctx, pair);
    }
    this.revisit(view.id, true);
  }

  /**
   * Punches (`punch`) and decides on relaying the device's pairs: only those some agent wanted and
   * that are not done (a direct pair is forgotten), never every peer of the account.
   */
  private revisit(id: string, punch: boolean): void {
    const { ctx } = this;
    for (const pair of this.devices.get(id)?.pairs ?? []) {
      if (punch) schedulePunch(ctx, pair, ctx.opts.settleMs);
      evaluateRelay(ctx, pair);
    }
  }

  /** An agent wants a path to the peer: punch the pair (and relay it if direct cannot work). */
  private want(from: string, peerId: string, relayed: boolean): void {
    const { ctx } = this;
    if (from === peerId || !ctx.online(from) || !ctx.online(peerId)) return;
    const pair = this.table.getOrAdd(from, peerId);
    pair.direct.delete(from);
    // A want during an attempt changes nothing: punching again would restart both sides' attempt
    // (and move a side that is on the relay off it). After it, the same candidates are tried again,
    // except for an agent saying it is on the relay the pair has (an instance telling the owner
    // again after its event bus was away): it would leave the relay for each candidate.
    const onItsRelay = relayed && pair.relay.phase === 'active';
    if (!onItsRelay && !punchInFlight(ctx, pair)) {
      pair.punch.lastSig = null;
      schedulePunch(ctx, pair, ctx.opts.settleMs);
    }
    // An agent already on a relay keeps one (the driver claims the allocation its relay still holds).
    if (relayed && pair.relay.phase === 'none') wantRelay(ctx, pair, 'punch-failed');
    else evaluateRelay(ctx, pair);
    // An active relay goes to both sides again: the wanting side may have missed it, and the other
    // side, dormant meanwhile, may have let its NAT mapping to the relay expire (a fresh `relay`
    // makes it re-add there, which binds it at the relay again).
    for (const id of [pair.a, pair.b]) sendRelay(ctx, pair, id);
  }

  private changed(view: PairDevice): void {
    const rec = this.devices.get(view.id);
    if (!rec) return;
    rec.view = view;
    if (rec.presence.state !== 'online') return;
    for (const pair of rec.pairs) resendIfTransportChanged(this.ctx, pair, view.id);
    this.revisit(view.id, true);
  }

  private reflexiveSeen(id: string, endpoints: readonly string[]): void {
    const { ctx } = this;
    const d = ctx.online(id);
    // Every observation comes here: one that changes nothing costs a comparison.
    if (!d || endpoints.length === 0 || sameMembers(d.presence.seen, endpoints)) return;
    const first = d.presence.seen.length === 0;
    const wasFresh = isFresh(d);
    d.presence.seen = [...endpoints];
    // A side that was on the TCP fallback sends UDP after all.
    if (first) for (const pair of d.pairs) resendIfTransportChanged(ctx, pair, id);
    // Punches wait for fresh addresses: the first one seen, or the netmap caught up before it.
    if (first || (!wasFresh && isFresh(d))) this.revisit(id, true);
  }

  private offline(id: string): void {
    const rec = this.devices.get(id);
    if (rec?.presence.state !== 'online') return;
    let relayed = false;
    for (const pair of [...rec.pairs]) {
      pair.direct.delete(id);
      pair.releaseAt = null;
      resetPunch(this.ctx, pair);
      if (pair.relay.phase === 'none') this.table.delete(pair);
      else relayed = true;
    }
    if (!relayed) {
      this.devices.delete(id);
      return;
    }
    const forgetAt = this.ctx.now + this.ctx.opts.offlineGraceMs;
    rec.presence = { state: 'away', forgetAt };
    this.timers.push(forgetAt, { kind: 'forget', id });
  }

  /** The device is gone (removed, or away past its grace): its relays are released at once. */
  private removed(id: string, why = 'device removed'): void {
    const rec = this.devices.get(id);
    if (!rec) return;
    this.devices.delete(id); // first: only its peers are told
    for (const pair of rec.pairs) {
      releaseRelay(this.ctx, pair, why);
      this.table.delete(pair);
    }
  }

  private report(from: string, r: Extract<PairEvent, { kind: 'path-report' }>['report']): void {
    const { ctx } = this;
    if (from === r.peerId || !ctx.online(from)) return;
    const key = pairKey(from, r.peerId);
    const owner = this.table.byAttempt.get(r.attemptId);
    if (owner && owner.key !== key) return; // another pair's attempt id
    let pair = this.table.get(key);
    if (!pair) {
      // Only a failure makes a pair (its path died: as good as a want); other news of a pair
      // that is done or was never wanted changes nothing.
      if (r.result !== 'failed' || !ctx.online(r.peerId)) return;
      pair = this.table.getOrAdd(from, r.peerId);
    }
    const fields = { deviceId: from, peerId: r.peerId, attemptId: r.attemptId, elapsedMs: r.elapsedMs };
    if (r.result === 'direct') {
      pair.direct.add(from);
      ctx.log('info', 'path direct', fields);
      if (pair.direct.size < 2) return;
      // Done: a direct pair is forgotten (its agents want it again if the path dies); a relayed
      // one keeps the relay until both sides stayed direct for the grace.
      if (pair.relay.phase === 'none') this.table.delete(pair);
      else if (pair.releaseAt === null) {
        pair.releaseAt = ctx.now + ctx.opts.directGraceMs;
        this.timers.push(pair.releaseAt, { kind: 'release', pair });
      }
      return;
    }
    pair.direct.delete(from);
    pair.releaseAt = null;
    if (r.result === 'relay') {
      // The relayed path works; failures of direct attempts come as `failed`.
      ctx.log('info', 'path relay', fields);
      return;
    }
    punchFailed(ctx, pair, from, r);
    if (pair.relay.phase === 'none' && ctx.bothOnline(pair)) wantRelay(ctx, pair, 'punch-failed');
  }

  /** A pair that is not relayed lives only while both of its devices are online and it is not done. */
  private prune(pair: PairRecord): void {
    if (pair.relay.phase !== 'none') return;
    if (pair.direct.size === 2 || !this.ctx.bothOnline(pair)) this.table.delete(pair);
  }

  private fireDue(): void {
    for (;;) {
      const due = this.timers.popDue(this.ctx.now);
      if (!due) return;
      this.fire(due.at, due.item);
    }
  }

  private fire(at: number, t: TimerItem): void {
    if ('id' in t) this.fireDevice(at, t.kind, t.id);
    else this.firePair(at, t.kind, t.pair);
  }

  private fireDevice(at: number, kind: 'udp' | 'forget', id: string): void {
    const { ctx } = this;
    if (kind === 'forget') {
      const rec = this.devices.get(id);
      if (rec?.presence.state === 'away' && rec.presence.forgetAt === at) this.removed(id, 'device offline');
      return;
    }
    // The UDP wait is over: a side still unseen is UDP-blocked (relay now, over TCP).
    const d = ctx.online(id);
    if (!d || d.presence.udpCheckAt !== at) return;
    d.presence.udpCheckAt = null;
    for (const pair of d.pairs) resendIfTransportChanged(ctx, pair, id);
    this.revisit(id, false);
  }

  private firePair(at: number, kind: 'punch' | 'release' | 'retry', pair: PairRecord): void {
    const { ctx } = this;
    if (this.table.get(pair.key) !== pair) return;
    if (kind === 'punch') {
      if (pair.punch.dueAt === at) firePunch(ctx, pair);
    } else if (kind === 'release') {
      if (pair.releaseAt !== at) return;
      releaseRelay(ctx, pair, 'direct path');
      this.prune(pair);
    } else if (pair.relay.phase === 'waiting' && pair.relay.retryAt === at) {
      retryRelay(ctx, pair);
    }
  }
}

function sameMembers(x: readonly string[], y: readonly string[]): boolean {
  return x.length === y.length && y.every((e) => x.includes(e));
}
