import { Attempt, type Probe } from './attempt';
import { kindOfEndpoint, parkingCandidate } from './candidates';
import type { PathContext, Probing } from './path-context';
import type { PathEffect } from './path-types';
import { leaveRelay, toRelay } from './relay-part';

/**
 * An attempt of our own over every known candidate. With none: the relay if we hold one and are
 * not on it, else a backoff (the want goes on) while WireGuard still has packets for the peer.
 */
export function startLocalAttempt(ctx: PathContext, now: number): PathEffect[] {
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
export function beginAttempt(ctx: PathContext, attempt: Attempt, now: number): PathEffect[] {
  ctx.attemptId = attempt.id;
  ctx.enter({ phase: 'scheduled', attempt }, now);
  return now >= attempt.startAt ? nextCandidate(ctx, attempt, now) : [];
}

/** Moves to the attempt's next candidate (or gives up after the last). */
export function nextCandidate(ctx: PathContext, attempt: Attempt, now: number): PathEffect[] {
  // Leaving a relay leg whose handshake is still in flight: that handshake, completing through the
  // relay a moment later, would pass for the candidate's (seen in the lab: a leader took it for its
  // direct path and never initiated, and the follower's one initiation had met its NAT too early).
  // The probe re-adds at once, which drops it, so only a handshake made afterwards counts.
  const relayInFlight = ctx.onRelay !== null && ctx.onRelay.confirmedAt === null;
  const probe = attempt.nextProbe(now, ctx.lastHandshakeMs, ctx.t, relayInFlight);
  if (probe === null) return fail(ctx, attempt, now);
  ctx.enter({ phase: 'probing', attempt, probe }, now);
  leaveRelay(ctx, now);
  // A punch's leader points WireGuard at the candidate (responses to the follower's initiation go
  // there too) but initiates only after leaderDelayMs.
  if (!probe.initiated) return [ctx.setEndpoint(probe.endpoint, ctx.keepaliveOn)];
  return [readd(ctx, probe)];
}

export function probeTick(ctx: PathContext, s: Probing, now: number): PathEffect[] {
  switch (s.attempt.step(s.probe, now, (endpoint) => kindOfEndpoint(endpoint, ctx.known()))) {
    case 'next':
      return nextCandidate(ctx, s.attempt, now);
    case 'readd':
      return [readd(ctx, s.probe)];
    case null:
      return [];
  }
}

/**
 * A look at WireGuard while probing: the candidate works once a handshake made by this probe is
 * seen with WireGuard on it. WireGuard on a relay instead roamed there on a relayed packet still in
 * flight when the probe began (seen in the lab: the follower then sent the rest of its punch to the
 * relay and failed it, 1.6 s of pings lost); it is pointed back at the candidate, session kept, and
 * that handshake counts once packets arrive there.
 */
export function observeProbe(
  ctx: PathContext,
  s: Probing,
  lastHandshakeMs: number,
  endpoint: string | null,
  viaRelay: boolean,
  rxBytes: number,
  now: number,
): PathEffect[] {
  const { attempt, probe } = s;
  if (viaRelay) {
    probe.seenOnRelay(lastHandshakeMs);
    return endpoint === ctx.endpoint ? [] : [ctx.setEndpoint(probe.endpoint, ctx.keepaliveOn)];
  }
  if (!probe.madeBy(lastHandshakeMs, attempt.startAt, rxBytes)) return [];
  return succeed(ctx, attempt.id, endpoint ?? probe.endpoint, now - attempt.startAt, now);
}

/** The peer reached us on its own (its punch, or WireGuard roaming): a direct path. */
export function succeedObserved(ctx: PathContext, endpoint: string, now: number): PathEffect[] {
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
