import type { Candidate, PunchMessage } from '@trellis/proto';
import { Attempt } from './attempt';
import {
  beginAttempt,
  nextCandidate,
  observeProbe,
  probeTick,
  startLocalAttempt,
  succeedObserved,
} from './attempt-part';
import { hostOf, kindOfEndpoint, orderCandidates, type PathKind, pathKindOf } from './candidates';
import { isDemand } from './demand';
import { demand, goDormant, inUse, observeDormant, park, waitsForRelay, wantTick } from './dormant-part';
import { PathContext } from './path-context';
import type { PathEffect, PathTimings, PeerPathStatus } from './path-types';
import type { RelayPath } from './relay-leg';
import {
  adoptRelay,
  leaveRelay,
  lostToRelay,
  observeRelay,
  relayTick,
  relayWakeAt,
  toRelay,
} from './relay-part';

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
 * This class dispatches events by phase (PathContext.state); the parts do the work: attempt-part
 * (attempts and their outcome), relay-part (the relay leg), dormant-part (dormancy and demand).
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
        return observeProbe(ctx, s, lastHandshakeMs, endpoint, viaRelay, traffic.rx, now);
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
