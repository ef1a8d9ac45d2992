import type { Candidate, PunchMessage } from '@trellis/proto';
import { Attempt, type Probe } from './attempt';
import {
  hostOf,
  kindOfEndpoint,
  orderCandidates,
  type PathKind,
  parkingCandidate,
  pathKindOf,
} from './candidates';
import { isDemand, type TrafficDelta } from './demand';
import { PathContext, type Probing } from './path-context';
import type { PathEffect, PathTimings, PeerPathStatus } from './path-types';
import { RelayLeg, type RelayPath } from './relay-leg';

/** How many punch ids to remember so a repeated punch is ignored. */
const SEEN_ATTEMPTS = 32;

/**
 * The path to one peer, sans IO: feed it events with the current local time, carry out the effects
 * it returns, and call `tick` at `nextWakeAt()` after feeding fresh handshake observations.
 *
 * An attempt points WireGuard at each candidate in turn (LAN first) by re-adding the peer, which
 * sends a fresh handshake initiation at once, and re-adds again on a growing schedule until the
 * candidate's deadline (Attempt, Probe). A handshake newer than the attempt's start means the path works.
 *
 * With a relay allocation from the broker, every phase without a working direct path (idle,
 * backoff, waiting for a punch) keeps WireGuard on the relay (RelayLeg); attempts still move it to
 * the candidates, and a failed one goes straight back to the relay.
 *
 * This class dispatches events by phase (PathContext.state); the functions below it do the work:
 * attempts and their outcome, the relay leg, dormancy and demand.
 */
export class PeerPathMachine {
  private readonly ctx: PathContext;
  private readonly seenAttempts: string[] = [];

  constructor(
    readonly peerId: string,
    readonly publicKey: string,
    /** True when our key sorts first: we retry in punches; the follower only in its own attempts. */
    leads: boolean,
    t: PathTimings,
    now: number,
    /** Whether a host is one of the netmap's relays (see PathContext.isRelayAddress). */
    isRelayHost: (host: string) => boolean = () => false,
    /**
     * Where a dormant peer with no candidate points WireGuard: an address that drops its packets
     * (our own port on loopback: mac1 fails), so tx still counts them and shows demand.
     */
    demandSink: string | null = null,
  ) {
    this.ctx = new PathContext(peerId, publicKey, leads, t, now, isRelayHost, demandSink);
  }

  /** The netmap's candidates for this peer changed (or arrived first). */
  setCandidates(candidates: readonly Candidate[], now: number): PathEffect[] {
    const ctx = this.ctx;
    const before = ctx.netmapCandidates;
    ctx.netmapCandidates = orderCandidates(candidates);
    const s = ctx.state;
    if (sameEndpointSet(before, ctx.netmapCandidates) && s.phase !== 'idle') return [];
    switch (s.phase) {
      case 'idle':
        // Candidates at last (or none: the sink): dormant until WireGuard has packets for the peer.
        return ctx.onRelay ? [] : goDormant(ctx, now);
      case 'dormant':
        return ctx.onRelay ? [] : park(ctx);
      case 'backoff':
        // On a working relay the broker decides whether the new addresses can work (it punches on
        // candidate changes when they can): an attempt of our own would cut the relayed traffic, as
        // for every candidate churn a broker restart brings (a symmetric NAT's reflexive ports).
        if (ctx.onRelay?.confirmedAt != null) return [];
        // Roaming: new addresses for a peer we cannot reach are worth trying at once.
        ctx.failures = 0;
        return startLocalAttempt(ctx, now);
      case 'direct': {
        // The peer left the address we use (it was listed and is not any more): the path is dead, do
        // not wait for staleness. No candidates at all say nothing about the path, and neither does a
        // list without an address it never had: WireGuard followed the peer's packets there (the
        // peer reached us from its new network before the broker knew it).
        const used = hostOf(s.endpoint);
        const hosts = hostsOf(ctx.netmapCandidates);
        const wasListed = hostsOf([...ctx.punchCandidates, ...before]).has(used);
        if (hosts.size === 0 || hosts.has(used) || !wasListed) return [];
        // Look at WireGuard before tearing its session down (re-adding forgets it): when the peer's
        // handshake already came from its new address, WireGuard points there and the path works.
        s.movedFrom = s.endpoint;
        return [];
      }
      case 'probing':
        return s.attempt.origin === 'local' ? startLocalAttempt(ctx, now) : [];
      case 'scheduled':
        return [];
    }
  }

  /** A punch from the broker, its start already in the local clock. A repeated attempt id is ignored. */
  punch(msg: PunchMessage, localStartAt: number, now: number): PathEffect[] {
    const ctx = this.ctx;
    if (this.seenAttempts.includes(msg.attemptId)) return [];
    this.seenAttempts.push(msg.attemptId);
    if (this.seenAttempts.length > SEEN_ATTEMPTS) this.seenAttempts.shift();
    ctx.punchCandidates = orderCandidates(msg.candidates);
    const startAt = Math.min(Math.max(localStartAt, now), now + ctx.t.maxStartDelayMs);
    const leads = msg.leader ?? ctx.leads;
    const attempt = new Attempt(msg.attemptId, 'punch', leads, ctx.punchCandidates, msg.deadlineMs, startAt);
    return beginAttempt(ctx, attempt, now);
  }

  /**
   * A relay allocation for this peer (replacing any earlier one). Used at once unless a direct path
   * works or an attempt runs (whose failure then goes to the relay).
   */
  setRelay(relay: RelayPath, now: number): PathEffect[] {
    const ctx = this.ctx;
    ctx.relay = relay;
    const s = ctx.state;
    // Our own attempt gets the short window it would have had with the relay (a punch keeps the broker's).
    if (s.phase === 'probing' && s.attempt.origin === 'local')
      s.attempt.capDeadline(s.probe, ctx.t.relayedDeadlineMs);
    if (s.phase === 'direct' || s.phase === 'probing') return [];
    if (s.phase === 'dormant') {
      // The other side wants the path: be on the relay (re-added, so the relay binds us afresh).
      ctx.backOff(now + ctx.t.backoffInitialMs, now);
      return toRelay(ctx, now);
    }
    // A punch about to start keeps its slot as a running one does (its failure goes to the relay).
    // Moving now would send the peer a handshake through the relay just before the punch, and a
    // peer already direct takes that for giving up on direct: the two sides then disagree.
    if (s.phase === 'scheduled' && ctx.onRelay === null) return [];
    if (ctx.onRelay && ctx.onRelay.relay.wgEndpoint === relay.wgEndpoint) {
      ctx.onRelay.relay = relay;
      return [];
    }
    return toRelay(ctx, now);
  }

  /** The broker released the allocation: while on it, try direct; otherwise just forget it. */
  releaseRelay(allocationId: string, now: number): PathEffect[] {
    const ctx = this.ctx;
    if (ctx.relay?.allocationId !== allocationId) return [];
    ctx.relay = null;
    if (ctx.onRelay === null) return [];
    leaveRelay(ctx, now);
    if (ctx.state.phase === 'dormant') {
      ctx.endpoint = null;
      return park(ctx);
    }
    // A punch about to start keeps its slot; otherwise see whether direct works now.
    return ctx.state.phase === 'scheduled' ? [] : startLocalAttempt(ctx, now);
  }

  relayPath(): RelayPath | null {
    return this.ctx.relay;
  }

  /**
   * The relay's TCP fallback at `wgEndpoint` connected again after a loss (the relay restarted, say):
   * the relay binds the new connection only by a handshake through it, so while WireGuard is on that
   * relay, re-add there as when the path started. Elsewhere (direct, an attempt) nothing to do.
   */
  relayLinkReconnected(wgEndpoint: string, now: number): PathEffect[] {
    if (this.ctx.onRelay?.relay.wgEndpoint !== wgEndpoint) return [];
    return toRelay(this.ctx, now);
  }

  /**
   * What WireGuard reports for the peer: latest handshake (ms since epoch, 0 = never), endpoint, and
   * byte counters (what tells a dormant peer's demand and a used path's idleness).
   */
  observeHandshake(
    lastHandshakeMs: number,
    endpoint: string | null,
    now: number,
    txBytes = 0,
    rxBytes = 0,
  ): PathEffect[] {
    const ctx = this.ctx;
    const previous = ctx.lastHandshakeMs;
    ctx.lastHandshakeMs = lastHandshakeMs;
    const traffic = ctx.meter.sample(txBytes, rxBytes, lastHandshakeMs > previous, now);
    // The peer's initiation through a relay moves WireGuard there: that is never a direct path.
    const viaOurRelay = endpoint !== null && ctx.isOurRelay(endpoint);
    const viaRelay = endpoint !== null && (viaOurRelay || ctx.isRelayAddress(endpoint));
    const s = ctx.state;
    if (s.phase === 'probing' && endpoint !== null && endpoint !== s.probe.endpoint && !viaRelay)
      s.probe.learned = endpoint;
    const isNew = lastHandshakeMs > 0 && lastHandshakeMs > previous;
    if (s.phase === 'dormant') return observeDormant(ctx, traffic, isNew, endpoint, now);
    if (s.phase === 'backoff' && isDemand(traffic, isNew)) s.demandSeen = true;
    if (lastHandshakeMs <= 0) return [];
    if (ctx.onRelay && (endpoint === null || viaOurRelay))
      return observeRelay(ctx, lastHandshakeMs, isNew, now);
    switch (s.phase) {
      case 'probing':
        return observeProbe(ctx, s, lastHandshakeMs, endpoint, viaRelay, now);
      case 'direct':
        if (viaOurRelay) return adoptRelay(ctx, now);
        if (viaRelay) return lostToRelay(ctx, endpoint!, now);
        if (isNew) ctx.lastAliveAt = now;
        if (endpoint !== null && endpoint !== s.endpoint) {
          // WireGuard roamed to where the peer's packets now come from; follow it for status.
          s.kind = kindOfEndpoint(endpoint, ctx.known());
          s.endpoint = endpoint;
          ctx.endpoint = endpoint;
        }
        return [];
      case 'idle':
      case 'backoff':
        // The peer reached us on its own (its punch, or WireGuard roaming): a direct path, unless via a relay.
        if (!isNew || endpoint === null || viaRelay || now - lastHandshakeMs > ctx.t.staleAfterMs) return [];
        return succeedObserved(ctx, endpoint, now);
      case 'scheduled':
        return [];
    }
  }

  /**
   * Something changed in this device's own network: retry at once what is not known to work.
   * `candidates`: the netmap's candidates for the peer as seen from the new network (which of its LAN
   * addresses are on our links changes with it; the peer's own list did not).
   */
  networkChanged(now: number, candidates?: readonly Candidate[]): PathEffect[] {
    const ctx = this.ctx;
    if (candidates) ctx.netmapCandidates = orderCandidates(candidates);
    const s = ctx.state;
    // Nothing in use or wanted: the next demand tries whatever the network is then.
    if (s.phase === 'scheduled' || s.phase === 'dormant' || s.phase === 'idle') return [];
    if (s.phase === 'probing' && s.attempt.origin === 'punch') return [];
    ctx.failures = 0;
    return startLocalAttempt(ctx, now);
  }

  tick(now: number): PathEffect[] {
    const ctx = this.ctx;
    if (inUse(ctx) && now - ctx.meter.lastActiveAt > ctx.t.idleAfterMs) return goDormant(ctx, now);
    const wants = wantTick(ctx, now);
    const effects = this.phaseTick(now);
    if (effects.length > 0 || ctx.onRelay === null || ctx.state.phase === 'dormant')
      return [...wants, ...effects];
    return [...wants, ...relayTick(ctx, now)];
  }

  private phaseTick(now: number): PathEffect[] {
    const ctx = this.ctx;
    const s = ctx.state;
    switch (s.phase) {
      case 'idle':
      case 'dormant':
        return [];
      case 'scheduled':
        return now >= s.attempt.startAt ? nextCandidate(ctx, s.attempt, now) : [];
      case 'probing':
        return probeTick(ctx, s, now);
      case 'direct': {
        const movedFrom = s.movedFrom;
        s.movedFrom = null;
        // Handshakes were just fed in: WireGuard still on the address the peer left means a dead path.
        // In use (an idle one went dormant above), so the path is wanted: find another, as when stale.
        if (movedFrom !== null && s.endpoint === movedFrom) return demand(ctx, now);
        if (now - ctx.lastAliveAt > ctx.t.staleAfterMs) return demand(ctx, now);
        return [];
      }
      case 'backoff':
        if (now < s.retryAt) return [];
        // On a working relay the agent's own retries would cut the traffic for every candidate's
        // deadline, and the broker knows better whether direct can work: it punches (with its
        // backoff) when it can, also on candidate changes; our own network changes retry at once.
        if (ctx.onRelay?.confirmedAt != null) {
          s.retryAt = Number.POSITIVE_INFINITY;
          return [];
        }
        // Retry only for packets WireGuard still has for the peer; otherwise nothing wants the path.
        return s.demandSeen ? startLocalAttempt(ctx, now) : goDormant(ctx, now);
    }
  }

  /** When `tick` wants to run next (local ms). */
  nextWakeAt(now: number): number {
    const ctx = this.ctx;
    let phase = this.phaseWakeAt(now);
    if (ctx.state.phase === 'dormant') return phase;
    if (inUse(ctx)) phase = Math.min(phase, ctx.meter.lastActiveAt + ctx.t.idleAfterMs + 1);
    const wantAt = waitsForRelay(ctx) ? null : ctx.want.wakeAt();
    if (wantAt !== null) phase = Math.min(phase, Math.max(wantAt, now));
    const relay = relayWakeAt(ctx, now);
    return relay === null ? phase : Math.min(phase, relay);
  }

  private phaseWakeAt(now: number): number {
    const s = this.ctx.state;
    const t = this.ctx.t;
    switch (s.phase) {
      case 'idle':
        return now + t.idlePollMs; // the peer may still reach us: notice it
      case 'dormant':
        return now + t.dormantPollMs; // demand: notice packets for the peer quickly
      case 'scheduled':
        return s.attempt.startAt;
      case 'probing':
        return s.probe.wakeAt(now);
      case 'direct':
        if (s.movedFrom !== null) return now;
        return Math.min(this.ctx.lastAliveAt + t.staleAfterMs + 1, now + t.idlePollMs);
      case 'backoff':
        return Math.min(s.retryAt, now + t.idlePollMs);
    }
  }

  status(): PeerPathStatus {
    const ctx = this.ctx;
    const s = ctx.state;
    const relayed = ctx.onRelay?.confirmedAt != null && s.phase !== 'dormant';
    let path: PathKind = relayed ? 'relay' : 'none';
    if (s.phase === 'direct') path = pathKindOf(s.kind);
    return {
      peerId: this.peerId,
      publicKey: this.publicKey,
      path,
      endpoint: s.phase === 'direct' ? s.endpoint : ctx.endpoint,
      kind: s.phase === 'direct' ? s.kind : null,
      relayName: relayed ? ctx.onRelay!.relay.relayName : null,
      since: ctx.pathSince,
      phase: s.phase,
      attemptId: ctx.attemptId,
      lastHandshakeMs: ctx.lastHandshakeMs,
      failures: ctx.failures,
    };
  }
}

function hostsOf(candidates: readonly Candidate[]): Set<string> {
  return new Set(candidates.map((c) => hostOf(c.endpoint)));
}

function sameEndpointSet(a: readonly Candidate[], b: readonly Candidate[]): boolean {
  if (a.length !== b.length) return false;
  const sb = new Set(b.map((c) => c.endpoint));
  return a.every((c) => sb.has(c.endpoint));
}

// --- attempts -------------------------------------------------------------------------------------

/**
 * An attempt of our own over every known candidate. With none: the relay if we hold one and are
 * not on it, else a backoff (the want goes on) while WireGuard still has packets for the peer.
 */
function startLocalAttempt(ctx: PathContext, now: number): PathEffect[] {
  const candidates = ctx.known();
  if (candidates.length === 0) {
    ctx.attemptId = null;
    if (ctx.relay && !ctx.onRelay) {
      ctx.enter({ phase: 'idle' }, now);
      return toRelay(ctx, now);
    }
    ctx.backOff(now + ctx.t.backoffInitialMs, now);
    return [];
  }
  ctx.localIds++;
  const t = ctx.t;
  const deadlineMs = ctx.relay ? Math.min(t.localDeadlineMs, t.relayedDeadlineMs) : t.localDeadlineMs;
  const attempt = new Attempt(`local:${ctx.localIds}`, 'local', ctx.leads, candidates, deadlineMs, now);
  return beginAttempt(ctx, attempt, now);
}

/** Scheduled until the attempt's start, then its first candidate. */
function beginAttempt(ctx: PathContext, attempt: Attempt, now: number): PathEffect[] {
  ctx.attemptId = attempt.id;
  ctx.enter({ phase: 'scheduled', attempt }, now);
  return now >= attempt.startAt ? nextCandidate(ctx, attempt, now) : [];
}

/** Moves to the attempt's next candidate (or gives up after the last). */
function nextCandidate(ctx: PathContext, attempt: Attempt, now: number): PathEffect[] {
  const probe = attempt.nextProbe(now, ctx.lastHandshakeMs, ctx.t);
  if (probe === null) return fail(ctx, attempt, now);
  ctx.enter({ phase: 'probing', attempt, probe }, now);
  leaveRelay(ctx, now);
  // A punch's leader points WireGuard at the candidate (responses to the follower's initiation go
  // there too) but initiates only after leaderDelayMs.
  if (!probe.initiated) return [ctx.setEndpoint(probe.endpoint, ctx.keepaliveOn)];
  return [readd(ctx, probe)];
}

function probeTick(ctx: PathContext, s: Probing, now: number): PathEffect[] {
  switch (s.attempt.step(s.probe, now, (endpoint) => kindOfEndpoint(endpoint, ctx.known()))) {
    case 'next':
      return nextCandidate(ctx, s.attempt, now);
    case 'readd':
      return [readd(ctx, s.probe)];
    case null:
      return [];
  }
}

/** A handshake while probing: the candidate works unless it came through a relay or is not ours. */
function observeProbe(
  ctx: PathContext,
  s: Probing,
  lastHandshakeMs: number,
  endpoint: string | null,
  viaRelay: boolean,
  now: number,
): PathEffect[] {
  const { attempt, probe } = s;
  if (viaRelay || !probe.madeBy(lastHandshakeMs, attempt.startAt)) return [];
  return succeed(ctx, attempt.id, endpoint ?? probe.endpoint, now - attempt.startAt, now);
}

/** The peer reached us on its own (its punch, or WireGuard roaming): a direct path. */
function succeedObserved(ctx: PathContext, endpoint: string, now: number): PathEffect[] {
  ctx.localIds++;
  return succeed(ctx, `observed:${ctx.localIds}`, endpoint, 0, now);
}

function succeed(
  ctx: PathContext,
  attemptId: string,
  endpoint: string,
  elapsedMs: number,
  now: number,
): PathEffect[] {
  leaveRelay(ctx, now);
  const kind = kindOfEndpoint(endpoint, ctx.known());
  ctx.enter({ phase: 'direct', endpoint, kind, movedFrom: null }, now);
  ctx.endpoint = endpoint;
  ctx.lastAliveAt = now;
  ctx.failures = 0;
  ctx.want.reset();
  ctx.meter.touch(now);
  ctx.pathSince = now;
  return [...ctx.keepalive(true), ctx.report(attemptId, 'direct', elapsedMs, endpoint, kind)];
}

function fail(ctx: PathContext, attempt: Attempt, now: number): PathEffect[] {
  ctx.failures++;
  const t = ctx.t;
  ctx.backOff(now + Math.min(t.backoffMaxMs, t.backoffInitialMs * 2 ** (ctx.failures - 1)), now);
  const effects: PathEffect[] = [ctx.report(attempt.id, 'failed', now - attempt.startAt)];
  if (ctx.relay) return [...effects, ...toRelay(ctx, now)];
  // Leave WireGuard on a candidate without keepalive: its own initiations for packets it still has
  // go there, and tell us whether the path is still wanted (demandSeen).
  const park = parkingCandidate(attempt.candidates);
  if (park && (park.endpoint !== ctx.endpoint || ctx.keepaliveOn))
    effects.push(ctx.setEndpoint(park.endpoint, false));
  return effects;
}

function readd(ctx: PathContext, probe: Probe): PathEffect {
  return ctx.readd(probe.readd());
}

// --- the relay leg ---------------------------------------------------------------------------------

/** Re-adds the peer at the relay: a fresh initiation, which (re)binds us at the relay. */
function toRelay(ctx: PathContext, now: number): PathEffect[] {
  const relay = ctx.relay!;
  leaveRelay(ctx, now);
  ctx.onRelay = new RelayLeg(relay, ctx.leads, ctx.t, now);
  return [ctx.readd(relay.wgEndpoint)];
}

/** WireGuard moves off the relay (to a candidate, or it roamed to the peer's direct address). */
function leaveRelay(ctx: PathContext, now: number): void {
  if (ctx.onRelay?.confirmedAt != null) ctx.pathSince = now;
  ctx.onRelay = null;
}

/** A handshake while on the relay: the leg's confirmation, or its freshness once confirmed. */
function observeRelay(ctx: PathContext, lastHandshakeMs: number, isNew: boolean, now: number): PathEffect[] {
  const leg = ctx.onRelay!;
  if (leg.confirmedAt !== null) {
    if (isNew) ctx.lastAliveAt = now;
    return [];
  }
  if (!leg.isFresh(lastHandshakeMs)) return [];
  return confirmRelay(ctx, leg, now - leg.since, now);
}

function confirmRelay(ctx: PathContext, leg: RelayLeg, elapsedMs: number, now: number): PathEffect[] {
  leg.confirmedAt = now;
  ctx.want.reset();
  ctx.meter.touch(now);
  ctx.lastAliveAt = now;
  ctx.pathSince = now;
  const r = leg.relay;
  return [ctx.report(`relay:${r.allocationId}`, 'relay', elapsedMs, r.endpoint, 'relay')];
}

/**
 * On a direct path, the peer's handshake came through our relay: it gave up on direct. Follow it
 * there (no re-add: that session works) and back off; on a confirmed relay the broker decides
 * when to try direct again (see the backoff tick).
 */
function adoptRelay(ctx: PathContext, now: number): PathEffect[] {
  ctx.backOffFromDirect(now);
  const relay = ctx.relay!;
  const leg = new RelayLeg(relay, ctx.leads, ctx.t, now);
  ctx.onRelay = leg;
  ctx.endpoint = relay.wgEndpoint;
  return confirmRelay(ctx, leg, 0, now);
}

/**
 * On a direct path, WireGuard moved to a relay allocation we hold no `relay` for: the peer gave up
 * on direct. Not a path we can report; back off as when adopting our own relay.
 */
function lostToRelay(ctx: PathContext, endpoint: string, now: number): PathEffect[] {
  ctx.backOffFromDirect(now);
  ctx.endpoint = endpoint;
  return [];
}

/** While on the relay: the leader's re-adds until it works, and a fresh re-add once it went stale. */
function relayTick(ctx: PathContext, now: number): PathEffect[] {
  const leg = ctx.onRelay!;
  if (leg.confirmedAt === null) return leg.retryDue(now) ? [ctx.readd(leg.relay.wgEndpoint)] : [];
  return now - ctx.lastAliveAt > ctx.t.staleAfterMs ? toRelay(ctx, now) : [];
}

/** When the relay leg wants a wake-up: its confirmation window, or its going stale; null: none. */
function relayWakeAt(ctx: PathContext, now: number): number | null {
  const leg = ctx.onRelay;
  if (leg === null) return null;
  return leg.confirmedAt === null ? leg.nextWakeAt(now) : ctx.lastAliveAt + ctx.t.staleAfterMs + 1;
}

// --- dormancy and demand ---------------------------------------------------------------------------

/** A path carries (or keeps open) traffic: direct, or a confirmed relay outside an attempt. */
function inUse(ctx: PathContext): boolean {
  const phase = ctx.state.phase;
  if (phase === 'direct') return true;
  const relayed = ctx.onRelay?.confirmedAt != null;
  return relayed && (phase === 'backoff' || phase === 'idle');
}

/** Nothing wants the path: keepalive off, no attempts, no reports, until demand or the broker. */
function goDormant(ctx: PathContext, now: number): PathEffect[] {
  ctx.want.reset();
  ctx.attemptId = null;
  ctx.failures = 0;
  ctx.enter({ phase: 'dormant' }, now);
  const effects = ctx.keepalive(false);
  return ctx.onRelay || ctx.endpoint !== null ? effects : [...effects, ...park(ctx)];
}

/** Points WireGuard at the best candidate (or the demand sink), keepalive off: its initiations go there. */
function park(ctx: PathContext): PathEffect[] {
  const best = parkingCandidate(ctx.known())?.endpoint ?? ctx.demandSink;
  if (best === null || best === ctx.endpoint) return [];
  return [ctx.setEndpoint(best, false)];
}

/** A dormant peer's counters: a handshake (the peer reached us) or packets for it wake it. */
function observeDormant(
  ctx: PathContext,
  d: TrafficDelta,
  isNew: boolean,
  endpoint: string | null,
  now: number,
): PathEffect[] {
  const viaOurRelay = endpoint !== null && ctx.isOurRelay(endpoint);
  // The peer talks to us: a fresh handshake, or traffic both ways over the session still alive.
  const alive = now - ctx.lastHandshakeMs <= ctx.t.staleAfterMs;
  const talking = alive && (isNew || (d.tx > 0 && d.rx > 0));
  if (talking && endpoint !== null) {
    if (ctx.onRelay && viaOurRelay) {
      ctx.backOff(Number.POSITIVE_INFINITY, now);
      const effects: PathEffect[] = ctx.keepalive(true);
      return [...effects, ...confirmRelay(ctx, ctx.onRelay, 0, now)];
    }
    if (!viaOurRelay && !ctx.isRelayAddress(endpoint)) return succeedObserved(ctx, endpoint, now);
    return [];
  }
  return isDemand(d, isNew) ? demand(ctx, now) : [];
}

/**
 * WireGuard has packets for the peer and no path: ask the broker (it punches both sides, or
 * relays) and try ourselves meanwhile; on a relay, just use it again.
 */
function demand(ctx: PathContext, now: number): PathEffect[] {
  const effects = wantTick(ctx, now, true);
  if (ctx.onRelay && ctx.relay && ctx.state.phase === 'dormant') {
    ctx.backOff(now + ctx.t.backoffInitialMs, now);
    return [...effects, ...toRelay(ctx, now)];
  }
  ctx.failures = 0;
  return [...effects, ...startLocalAttempt(ctx, now)];
}

/** `want-path` while demand has no path (WantSchedule); `start` begins a new round. */
function wantTick(ctx: PathContext, now: number, start = false): PathEffect[] {
  if (start) ctx.want.reset();
  else if (!ctx.want.active || inUse(ctx) || waitsForRelay(ctx)) return [];
  if (!ctx.want.due(now)) return [];
  return [{ type: 'send', message: { type: 'want-path', peerId: ctx.peerId } }];
}

/**
 * The broker answered the want with a relay: asking again would only make it punch again, which
 * takes both sides off the relay before it is confirmed (the relay's confirmation ends the want;
 * a release resumes it).
 */
function waitsForRelay(ctx: PathContext): boolean {
  return ctx.relay !== null;
}
