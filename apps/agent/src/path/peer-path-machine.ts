import type { Candidate, CandidateKind, PathReportMessage, PunchMessage } from '@trellis/proto';
import { Attempt, type Probe } from './attempt';
import {
  hostOf,
  kindOfEndpoint,
  mergeCandidates,
  orderCandidates,
  type PathKind,
  parkingCandidate,
  pathKindOf,
} from './candidates';
import { isDemand, type TrafficDelta, TrafficMeter, WantSchedule } from './demand';
import type { PathEffect, PathPhase, PathTimings, PeerPathStatus } from './path-types';
import { RelayLeg, type RelayPath } from './relay-leg';

interface DirectPath {
  endpoint: string;
  kind: CandidateKind;
}

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
 */
export class PeerPathMachine {
  private phase: PathPhase = 'idle';
  private netmapCandidates: Candidate[] = [];
  private punchCandidates: Candidate[] = [];
  private readonly seenAttempts: string[] = [];
  private attempt: Attempt | null = null;
  /** The candidate being tried, while probing. */
  private probe: Probe | null = null;
  private direct: DirectPath | null = null;
  private pathSince: number;
  private lastHandshakeMs = 0;
  /** Local time of the last handshake we counted as new (or of becoming direct). */
  private lastAliveAt = 0;
  private failures = 0;
  private retryAt = 0;
  private localIds = 0;
  /** What we last told WireGuard the endpoint is. */
  private endpoint: string | null = null;
  /** The broker's relay allocation for this peer, if any. */
  private relay: RelayPath | null = null;
  /** Set while WireGuard points at the relay. */
  private onRelay: RelayLeg | null = null;
  /** Whether WireGuard has persistent keepalive for the peer (only while a path is wanted or in use). */
  private keepaliveOn = false;
  private readonly meter: TrafficMeter;
  private readonly want: WantSchedule;
  /** In backoff: WireGuard had packets for the peer since the attempt failed (retry, else go dormant). */
  private demandSeen = false;
  /**
   * The direct endpoint the netmap says the peer left, until the next look at WireGuard decides:
   * still there, the path is dead; elsewhere, WireGuard followed the peer's packets (see setCandidates).
   */
  private movedFrom: string | null = null;

  constructor(
    readonly peerId: string,
    readonly publicKey: string,
    /** True when our key sorts first: we retry in punches; the follower only in its own attempts. */
    private readonly leads: boolean,
    private readonly t: PathTimings,
    now: number,
    /** Whether a host is one of the netmap's relays (see isRelayAddress). */
    private readonly isRelayHost: (host: string) => boolean = () => false,
    /**
     * Where a dormant peer with no candidate points WireGuard: an address that drops its packets
     * (our own port on loopback: mac1 fails), so tx still counts them and shows demand.
     */
    private readonly demandSink: string | null = null,
  ) {
    this.pathSince = now;
    this.meter = new TrafficMeter(now);
    this.want = new WantSchedule(t);
  }

  /** The netmap's candidates for this peer changed (or arrived first). */
  setCandidates(candidates: readonly Candidate[], now: number): PathEffect[] {
    const before = this.netmapCandidates;
    this.netmapCandidates = orderCandidates(candidates);
    if (sameEndpointSet(before, this.netmapCandidates) && this.phase !== 'idle') return [];
    switch (this.phase) {
      case 'idle':
        // Candidates at last (or none: the sink): dormant until WireGuard has packets for the peer.
        return this.onRelay ? [] : this.goDormant(now);
      case 'dormant':
        return this.onRelay ? [] : this.park();
      case 'backoff':
        // On a working relay the broker decides whether the new addresses can work (it punches on
        // candidate changes when they can): an attempt of our own would cut the relayed traffic, as
        // for every candidate churn a broker restart brings (a symmetric NAT's reflexive ports).
        if (this.onRelay?.confirmedAt != null) return [];
        // Roaming: new addresses for a peer we cannot reach are worth trying at once.
        this.failures = 0;
        return this.startLocalAttempt(now);
      case 'direct': {
        // The peer left the address we use (it was listed and is not any more): the path is dead, do
        // not wait for staleness. No candidates at all say nothing about the path, and neither does a
        // list without an address it never had: WireGuard followed the peer's packets there (the
        // peer reached us from its new network before the broker knew it).
        const used = hostOf(this.direct!.endpoint);
        const hosts = hostsOf(this.netmapCandidates);
        const wasListed = hostsOf([...this.punchCandidates, ...before]).has(used);
        if (hosts.size === 0 || hosts.has(used) || !wasListed) return [];
        // Look at WireGuard before tearing its session down (re-adding forgets it): when the peer's
        // handshake already came from its new address, WireGuard points there and the path works.
        this.movedFrom = this.direct!.endpoint;
        return [];
      }
      case 'probing':
        return this.attempt?.origin === 'local' ? this.startLocalAttempt(now) : [];
      case 'scheduled':
        return [];
    }
  }

  /** A punch from the broker, its start already in the local clock. A repeated attempt id is ignored. */
  punch(msg: PunchMessage, localStartAt: number, now: number): PathEffect[] {
    if (this.seenAttempts.includes(msg.attemptId)) return [];
    this.seenAttempts.push(msg.attemptId);
    if (this.seenAttempts.length > SEEN_ATTEMPTS) this.seenAttempts.shift();
    this.punchCandidates = orderCandidates(msg.candidates);
    const startAt = Math.min(Math.max(localStartAt, now), now + this.t.maxStartDelayMs);
    const leads = msg.leader ?? this.leads;
    const attempt = new Attempt(msg.attemptId, 'punch', leads, this.punchCandidates, msg.deadlineMs, startAt);
    return this.beginAttempt(attempt, now);
  }

  /**
   * A relay allocation for this peer (replacing any earlier one). Used at once unless a direct path
   * works or an attempt runs (whose failure then goes to the relay).
   */
  setRelay(relay: RelayPath, now: number): PathEffect[] {
    this.relay = relay;
    if (this.phase === 'probing' && this.attempt!.origin === 'local') {
      // Our own attempt gets the short window it would have had with the relay (a punch keeps the broker's).
      this.attempt!.capDeadline(this.probe!, this.t.relayedDeadlineMs);
    }
    if (this.phase === 'direct' || this.phase === 'probing') return [];
    if (this.phase === 'dormant') {
      // The other side wants the path: be on the relay (re-added, so the relay binds us afresh).
      this.leavePath('backoff', now);
      this.retryAt = now + this.t.backoffInitialMs;
      return this.toRelay(now);
    }
    // A punch about to start keeps its slot as a running one does (its failure goes to the relay).
    // Moving now would send the peer a handshake through the relay just before the punch, and a
    // peer already direct takes that for giving up on direct: the two sides then disagree.
    if (this.phase === 'scheduled' && this.onRelay === null) return [];
    if (this.onRelay && this.onRelay.relay.wgEndpoint === relay.wgEndpoint) {
      this.onRelay.relay = relay;
      return [];
    }
    return this.toRelay(now);
  }

  /** The broker released the allocation: while on it, try direct; otherwise just forget it. */
  releaseRelay(allocationId: string, now: number): PathEffect[] {
    if (this.relay?.allocationId !== allocationId) return [];
    this.relay = null;
    if (this.onRelay === null) return [];
    this.leaveRelay(now);
    if (this.phase === 'dormant') {
      this.endpoint = null;
      return this.park();
    }
    // A punch about to start keeps its slot; otherwise see whether direct works now.
    return this.phase === 'scheduled' ? [] : this.startLocalAttempt(now);
  }

  relayPath(): RelayPath | null {
    return this.relay;
  }

  /**
   * The relay's TCP fallback at `wgEndpoint` connected again after a loss (the relay restarted, say):
   * the relay binds the new connection only by a handshake through it, so while WireGuard is on that
   * relay, re-add there as when the path started. Elsewhere (direct, an attempt) nothing to do.
   */
  relayLinkReconnected(wgEndpoint: string, now: number): PathEffect[] {
    if (this.onRelay?.relay.wgEndpoint !== wgEndpoint) return [];
    return this.toRelay(now);
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
    const previous = this.lastHandshakeMs;
    this.lastHandshakeMs = lastHandshakeMs;
    const traffic = this.meter.sample(txBytes, rxBytes, lastHandshakeMs > previous, now);
    // The peer's initiation through a relay moves WireGuard there: that is never a direct path.
    const viaOurRelay = endpoint !== null && this.isOurRelay(endpoint);
    const viaRelay = endpoint !== null && (viaOurRelay || this.isRelayAddress(endpoint));
    if (this.phase === 'probing' && endpoint !== null && endpoint !== this.probe!.endpoint && !viaRelay) {
      this.probe!.learned = endpoint;
    }
    const isNew = lastHandshakeMs > 0 && lastHandshakeMs > previous;
    if (this.phase === 'dormant') return this.observeDormant(traffic, isNew, endpoint, now);
    if (this.phase === 'backoff' && isDemand(traffic, isNew)) this.demandSeen = true;
    if (lastHandshakeMs <= 0) return [];
    if (this.onRelay && (endpoint === null || viaOurRelay))
      return this.observeRelay(lastHandshakeMs, isNew, now);
    switch (this.phase) {
      case 'probing': {
        const a = this.attempt!;
        const p = this.probe!;
        if (viaRelay || !p.madeBy(lastHandshakeMs, a.startAt)) return [];
        return this.succeed(a.id, endpoint ?? p.endpoint, now - a.startAt, now);
      }
      case 'direct':
        if (viaOurRelay) return this.adoptRelay(now);
        if (viaRelay) return this.lostToRelay(endpoint!, now);
        if (isNew) this.lastAliveAt = now;
        if (endpoint !== null && this.direct && endpoint !== this.direct.endpoint) {
          // WireGuard roamed to where the peer's packets now come from; follow it for status.
          this.direct = { endpoint, kind: kindOfEndpoint(endpoint, this.known()) };
          this.endpoint = endpoint;
        }
        return [];
      case 'idle':
      case 'backoff':
        // The peer reached us on its own (its punch, or WireGuard roaming): a direct path, unless via a relay.
        if (!isNew || endpoint === null || viaRelay || now - lastHandshakeMs > this.t.staleAfterMs) return [];
        this.localIds++;
        return this.succeed(`observed:${this.localIds}`, endpoint, 0, now);
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
    if (candidates) this.netmapCandidates = orderCandidates(candidates);
    // Nothing in use or wanted: the next demand tries whatever the network is then.
    if (this.phase === 'scheduled' || this.phase === 'dormant' || this.phase === 'idle') return [];
    if (this.phase === 'probing' && this.attempt?.origin === 'punch') return [];
    this.failures = 0;
    return this.startLocalAttempt(now);
  }

  tick(now: number): PathEffect[] {
    if (this.inUse() && now - this.meter.lastActiveAt > this.t.idleAfterMs) return this.goDormant(now);
    const wants = this.wantTick(now);
    const effects = this.phaseTick(now);
    if (effects.length > 0 || this.onRelay === null || this.phase === 'dormant')
      return [...wants, ...effects];
    return [...wants, ...this.relayTick(now)];
  }

  private phaseTick(now: number): PathEffect[] {
    switch (this.phase) {
      case 'idle':
      case 'dormant':
        return [];
      case 'scheduled':
        return now >= this.attempt!.startAt ? this.nextCandidate(now) : [];
      case 'probing':
        return this.probeTick(now);
      case 'direct': {
        const movedFrom = this.movedFrom;
        this.movedFrom = null;
        // Handshakes were just fed in: WireGuard still on the address the peer left means a dead path.
        // In use (an idle one went dormant above), so the path is wanted: find another, as when stale.
        if (movedFrom !== null && this.direct!.endpoint === movedFrom) return this.demand(now);
        if (now - this.lastAliveAt > this.t.staleAfterMs) return this.demand(now);
        return [];
      }
      case 'backoff':
        if (now < this.retryAt) return [];
        // On a working relay the agent's own retries would cut the traffic for every candidate's
        // deadline, and the broker knows better whether direct can work: it punches (with its
        // backoff) when it can, also on candidate changes; our own network changes retry at once.
        if (this.onRelay?.confirmedAt != null) {
          this.retryAt = Number.POSITIVE_INFINITY;
          return [];
        }
        // Retry only for packets WireGuard still has for the peer; otherwise nothing wants the path.
        return this.demandSeen ? this.startLocalAttempt(now) : this.goDormant(now);
    }
  }

  /** When `tick` wants to run next (local ms). */
  nextWakeAt(now: number): number {
    let phase = this.phaseWakeAt(now);
    if (this.phase === 'dormant') return phase;
    if (this.inUse()) phase = Math.min(phase, this.meter.lastActiveAt + this.t.idleAfterMs + 1);
    const wantAt = this.waitsForRelay() ? null : this.want.wakeAt();
    if (wantAt !== null) phase = Math.min(phase, Math.max(wantAt, now));
    const leg = this.onRelay;
    if (leg === null) return phase;
    const relay = leg.confirmedAt === null ? leg.nextWakeAt(now) : this.lastAliveAt + this.t.staleAfterMs + 1;
    return relay === null ? phase : Math.min(phase, relay);
  }

  private phaseWakeAt(now: number): number {
    switch (this.phase) {
      case 'idle':
        return now + this.t.idlePollMs; // the peer may still reach us: notice it
      case 'dormant':
        return now + this.t.dormantPollMs; // demand: notice packets for the peer quickly
      case 'scheduled':
        return this.attempt!.startAt;
      case 'probing':
        return this.probe!.wakeAt(now);
      case 'direct':
        if (this.movedFrom !== null) return now;
        return Math.min(this.lastAliveAt + this.t.staleAfterMs + 1, now + this.t.idlePollMs);
      case 'backoff':
        return Math.min(this.retryAt, now + this.t.idlePollMs);
    }
  }

  status(): PeerPathStatus {
    const relayed = this.onRelay?.confirmedAt != null && this.phase !== 'dormant';
    let path: PathKind = relayed ? 'relay' : 'none';
    if (this.phase === 'direct' && this.direct) path = pathKindOf(this.direct.kind);
    return {
      peerId: this.peerId,
      publicKey: this.publicKey,
      path,
      endpoint: this.phase === 'direct' ? (this.direct?.endpoint ?? null) : this.endpoint,
      kind: this.phase === 'direct' ? (this.direct?.kind ?? null) : null,
      relayName: relayed ? this.onRelay!.relay.relayName : null,
      since: this.pathSince,
      phase: this.phase,
      attemptId: this.attempt?.id ?? null,
      lastHandshakeMs: this.lastHandshakeMs,
      failures: this.failures,
    };
  }

  // --- internals ---------------------------------------------------------------------------------

  /** A path carries (or keeps open) traffic: direct, or a confirmed relay outside an attempt. */
  private inUse(): boolean {
    if (this.phase === 'direct') return true;
    const relayed = this.onRelay?.confirmedAt != null;
    return relayed && (this.phase === 'backoff' || this.phase === 'idle');
  }

  /** A dormant peer's counters: a handshake (the peer reached us) or packets for it wake it. */
  private observeDormant(
    d: TrafficDelta,
    isNew: boolean,
    endpoint: string | null,
    now: number,
  ): PathEffect[] {
    const viaOurRelay = endpoint !== null && this.isOurRelay(endpoint);
    // The peer talks to us: a fresh handshake, or traffic both ways over the session still alive.
    const alive = now - this.lastHandshakeMs <= this.t.staleAfterMs;
    const talking = alive && (isNew || (d.tx > 0 && d.rx > 0));
    if (talking && endpoint !== null) {
      if (this.onRelay && viaOurRelay) {
        this.leavePath('backoff', now);
        this.retryAt = Number.POSITIVE_INFINITY;
        const effects: PathEffect[] = this.keepalive(true);
        return [...effects, ...this.confirmRelay(this.onRelay, 0, now)];
      }
      if (!viaOurRelay && !this.isRelayAddress(endpoint)) {
        this.localIds++;
        return this.succeed(`observed:${this.localIds}`, endpoint, 0, now);
      }
      return [];
    }
    return isDemand(d, isNew) ? this.demand(now) : [];
  }

  /**
   * WireGuard has packets for the peer and no path: ask the broker (it punches both sides, or
   * relays) and try ourselves meanwhile; on a relay, just use it again.
   */
  private demand(now: number): PathEffect[] {
    const effects = this.wantTick(now, true);
    if (this.onRelay && this.relay && this.phase === 'dormant') {
      this.leavePath('backoff', now);
      this.retryAt = now + this.t.backoffInitialMs;
      return [...effects, ...this.toRelay(now)];
    }
    this.failures = 0;
    return [...effects, ...this.startLocalAttempt(now)];
  }

  /** `want-path` while demand has no path (WantSchedule); `start` begins a new round. */
  private wantTick(now: number, start = false): PathEffect[] {
    if (start) this.want.reset();
    else if (!this.want.active || this.inUse() || this.waitsForRelay()) return [];
    if (!this.want.due(now)) return [];
    return [{ type: 'send', message: { type: 'want-path', peerId: this.peerId } }];
  }

  /**
   * The broker answered the want with a relay: asking again would only make it punch again, which
   * takes both sides off the relay before it is confirmed (the relay's confirmation ends the want;
   * a release resumes it).
   */
  private waitsForRelay(): boolean {
    return this.relay !== null;
  }

  /** Nothing wants the path: keepalive off, no attempts, no reports, until demand or the broker. */
  private goDormant(now: number): PathEffect[] {
    this.want.reset();
    this.attempt = null;
    this.failures = 0;
    this.demandSeen = false;
    this.leavePath('dormant', now);
    const effects = this.keepalive(false);
    return this.onRelay || this.endpoint !== null ? effects : [...effects, ...this.park()];
  }

  /** Points WireGuard at the best candidate (or the demand sink), keepalive off, so its own initiation goes there. */
  private park(): PathEffect[] {
    const best = parkingCandidate(this.known())?.endpoint ?? this.demandSink;
    if (best === null || best === this.endpoint) return [];
    return [this.setEndpoint(best, false)];
  }

  private setEndpoint(endpoint: string, keepalive: boolean): PathEffect {
    this.endpoint = endpoint;
    this.keepaliveOn = keepalive;
    return { type: 'set-endpoint', peerId: this.peerId, publicKey: this.publicKey, endpoint, keepalive };
  }

  private keepalive(on: boolean): PathEffect[] {
    if (this.keepaliveOn === on) return [];
    this.keepaliveOn = on;
    return [{ type: 'keepalive', peerId: this.peerId, publicKey: this.publicKey, on }];
  }

  private known(): Candidate[] {
    return mergeCandidates(this.punchCandidates, this.netmapCandidates);
  }

  /** Our allocation, by the address the broker gave or WireGuard's (a TCP fallback's loopback). */
  private isOurRelay(endpoint: string): boolean {
    return this.relay !== null && (endpoint === this.relay.wgEndpoint || endpoint === this.relay.endpoint);
  }

  /**
   * An allocation we hold no `relay` for (lost, not yet arrived, or from before a restart): on a
   * relay's host and none of the peer's candidates (a device may run next to a relay).
   */
  private isRelayAddress(endpoint: string): boolean {
    return this.isRelayHost(hostOf(endpoint)) && !this.known().some((c) => c.endpoint === endpoint);
  }

  private startLocalAttempt(now: number): PathEffect[] {
    const candidates = this.known();
    if (candidates.length === 0) {
      this.attempt = null;
      if (this.relay && !this.onRelay) {
        this.leavePath('idle', now);
        return this.toRelay(now);
      }
      // Nothing to try: wait (the want goes on) while WireGuard still has packets for the peer.
      this.leavePath('backoff', now);
      this.retryAt = now + this.t.backoffInitialMs;
      this.demandSeen = false;
      return [];
    }
    this.localIds++;
    const deadlineMs = this.relay
      ? Math.min(this.t.localDeadlineMs, this.t.relayedDeadlineMs)
      : this.t.localDeadlineMs;
    const attempt = new Attempt(`local:${this.localIds}`, 'local', this.leads, candidates, deadlineMs, now);
    return this.beginAttempt(attempt, now);
  }

  /** Re-adds the peer at the relay: a fresh initiation, which (re)binds us at the relay. */
  private toRelay(now: number): PathEffect[] {
    const relay = this.relay!;
    this.leaveRelay(now);
    this.onRelay = new RelayLeg(relay, this.leads, this.t, now);
    this.endpoint = relay.wgEndpoint;
    return [this.readdEffect(relay.wgEndpoint)];
  }

  /** WireGuard moves off the relay (to a candidate, or it roamed to the peer's direct address). */
  private leaveRelay(now: number): void {
    if (this.onRelay?.confirmedAt != null) this.pathSince = now;
    this.onRelay = null;
  }

  private observeRelay(lastHandshakeMs: number, isNew: boolean, now: number): PathEffect[] {
    const leg = this.onRelay!;
    if (leg.confirmedAt !== null) {
      if (isNew) this.lastAliveAt = now;
      return [];
    }
    if (!leg.isFresh(lastHandshakeMs)) return [];
    return this.confirmRelay(leg, now - leg.since, now);
  }

  private confirmRelay(leg: RelayLeg, elapsedMs: number, now: number): PathEffect[] {
    leg.confirmedAt = now;
    this.want.reset();
    this.meter.touch(now);
    this.lastAliveAt = now;
    this.pathSince = now;
    const r = leg.relay;
    return [this.report(`relay:${r.allocationId}`, 'relay', elapsedMs, r.endpoint, 'relay')];
  }

  /**
   * On a direct path, the peer's handshake came through the relay: it gave up on direct. Follow it
   * there (no re-add: that session works) and retry direct after the first backoff step.
   */
  private adoptRelay(now: number): PathEffect[] {
    this.leaveDirectForRelay(now);
    const relay = this.relay!;
    this.onRelay = new RelayLeg(relay, this.leads, this.t, now);
    this.endpoint = relay.wgEndpoint;
    return this.confirmRelay(this.onRelay, 0, now);
  }

  /**
   * On a direct path, WireGuard moved to a relay allocation we hold no `relay` for: the peer gave up
   * on direct. Not a path we can report; back off as when adopting our own relay.
   */
  private lostToRelay(endpoint: string, now: number): PathEffect[] {
    this.leaveDirectForRelay(now);
    this.endpoint = endpoint;
    return [];
  }

  private leaveDirectForRelay(now: number): void {
    this.failures++;
    this.retryAt = now + this.t.backoffInitialMs;
    this.leavePath('backoff', now);
  }

  /** While on the relay: the leader's re-adds until it works, and a fresh re-add once it went stale. */
  private relayTick(now: number): PathEffect[] {
    const leg = this.onRelay!;
    if (leg.confirmedAt === null) return leg.retryDue(now) ? [this.readdEffect(leg.relay.wgEndpoint)] : [];
    return now - this.lastAliveAt > this.t.staleAfterMs ? this.toRelay(now) : [];
  }

  private beginAttempt(attempt: Attempt, now: number): PathEffect[] {
    this.attempt = attempt;
    this.leavePath('scheduled', now);
    return now >= attempt.startAt ? this.nextCandidate(now) : [];
  }

  /** Moves to the attempt's next candidate (or gives up after the last). */
  private nextCandidate(now: number): PathEffect[] {
    const probe = this.attempt!.nextProbe(now, this.lastHandshakeMs, this.t);
    if (probe === null) return this.fail(now);
    this.phase = 'probing';
    this.probe = probe;
    this.leaveRelay(now);
    // A punch's leader points WireGuard at the candidate (responses to the follower's initiation go
    // there too) but initiates only after leaderDelayMs.
    if (!probe.initiated) return [this.setEndpoint(probe.endpoint, this.keepaliveOn)];
    return [this.readd(probe)];
  }

  private probeTick(now: number): PathEffect[] {
    const kindOf = (endpoint: string) => kindOfEndpoint(endpoint, this.known());
    switch (this.attempt!.step(this.probe!, now, kindOf)) {
      case 'next':
        return this.nextCandidate(now);
      case 'readd':
        return [this.readd(this.probe!)];
      case null:
        return [];
    }
  }

  private readd(probe: Probe): PathEffect {
    const endpoint = probe.readd();
    this.endpoint = endpoint;
    return this.readdEffect(endpoint);
  }

  private readdEffect(endpoint: string): PathEffect {
    this.keepaliveOn = true; // a re-add sets it: the path is wanted
    return { type: 'readd-peer', peerId: this.peerId, publicKey: this.publicKey, endpoint };
  }

  private succeed(attemptId: string, endpoint: string, elapsedMs: number, now: number): PathEffect[] {
    this.leaveRelay(now);
    const kind = kindOfEndpoint(endpoint, this.known());
    const wasDirect = this.phase === 'direct';
    this.phase = 'direct';
    this.direct = { endpoint, kind };
    this.endpoint = endpoint;
    this.lastAliveAt = now;
    this.failures = 0;
    this.want.reset();
    this.meter.touch(now);
    if (!wasDirect) this.pathSince = now;
    return [...this.keepalive(true), this.report(attemptId, 'direct', elapsedMs, endpoint, kind)];
  }

  private fail(now: number): PathEffect[] {
    const a = this.attempt!;
    this.failures++;
    const delay = Math.min(this.t.backoffMaxMs, this.t.backoffInitialMs * 2 ** (this.failures - 1));
    this.retryAt = now + delay;
    this.leavePath('backoff', now);
    this.demandSeen = false;
    const effects: PathEffect[] = [this.report(a.id, 'failed', now - a.startAt)];
    if (this.relay) return [...effects, ...this.toRelay(now)];
    // Leave WireGuard on a candidate without keepalive: its own initiations for packets it still
    // has go there, and tell us whether the path is still wanted (demandSeen).
    const park = parkingCandidate(a.candidates);
    if (park && (park.endpoint !== this.endpoint || this.keepaliveOn))
      effects.push(this.setEndpoint(park.endpoint, false));
    return effects;
  }

  private leavePath(phase: PathPhase, now: number): void {
    if (this.phase === 'direct') this.pathSince = now;
    this.movedFrom = null;
    this.phase = phase;
    this.direct = null;
    this.probe = null;
  }

  private report(
    attemptId: string,
    result: PathReportMessage['result'],
    elapsedMs: number,
    endpoint?: string,
    kind?: PathReportMessage['kind'],
  ): PathEffect {
    const message: PathReportMessage = { type: 'path', peerId: this.peerId, attemptId, result, elapsedMs };
    if (endpoint !== undefined) message.endpoint = endpoint;
    if (kind !== undefined) message.kind = kind;
    return { type: 'send', message };
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
