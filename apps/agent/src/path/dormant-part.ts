import { startLocalAttempt, succeedObserved } from './attempt-part';
import { parkingCandidate } from './candidates';
import { isDemand, type TrafficDelta } from './demand';
import type { PathContext } from './path-context';
import type { PathEffect } from './path-types';
import { confirmRelay, toRelay } from './relay-part';

/** A path carries (or keeps open) traffic: direct, or a confirmed relay outside an attempt. */
export function inUse(ctx: PathContext): boolean {
  const phase = ctx.state.phase;
  if (phase === 'direct') return true;
  const relayed = ctx.onRelay?.confirmedAt != null;
  return relayed && (phase === 'backoff' || phase === 'idle');
}

/** Nothing wants the path: keepalive off, no attempts, no reports, until demand or the broker. */
export function goDormant(ctx: PathContext, now: number): PathEffect[] {
  ctx.want.reset();
  ctx.attemptId = null;
  ctx.failures = 0;
  ctx.enter({ phase: 'dormant' }, now);
  const effects = ctx.keepalive(false);
  return ctx.onRelay || ctx.endpoint !== null ? effects : [...effects, ...park(ctx)];
}

/** Points WireGuard at the best candidate (or the demand sink), keepalive off: its initiations go there. */
export function park(ctx: PathContext): PathEffect[] {
  const best = parkingCandidate(ctx.known())?.endpoint ?? ctx.demandSink;
  if (best === null || best === ctx.endpoint) return [];
  return [ctx.setEndpoint(best, false)];
}

/** A dormant peer's counters: a handshake (the peer reached us) or packets for it wake it. */
export function observeDormant(
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
export function demand(ctx: PathContext, now: number): PathEffect[] {
  const effects = wantTick(ctx, now, true);
  if (ctx.onRelay && ctx.relay && ctx.state.phase === 'dormant') {
    ctx.backOff(now + ctx.t.backoffInitialMs, now);
    return [...effects, ...toRelay(ctx, now)];
  }
  ctx.failures = 0;
  return [...effects, ...startLocalAttempt(ctx, now)];
}

/** `want-path` while demand has no path (WantSchedule); `start` begins a new round. */
export function wantTick(ctx: PathContext, now: number, start = false): PathEffect[] {
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
export function waitsForRelay(ctx: PathContext): boolean {
  return ctx.relay !== null;
}
