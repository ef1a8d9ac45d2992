import type { PathContext } from './path-context';
import type { PathEffect } from './path-types';
import { RelayLeg } from './relay-leg';

/** Re-adds the peer at the relay: a fresh initiation, which (re)binds us at the relay. */
export function toRelay(ctx: PathContext, now: number): PathEffect[] {
  const relay = ctx.relay!;
  leaveRelay(ctx, now);
  ctx.onRelay = new RelayLeg(relay, ctx.leads, ctx.t, now);
  return [ctx.readd(relay.wgEndpoint)];
}

/** WireGuard moves off the relay (to a candidate, or it roamed to the peer's direct address). */
export function leaveRelay(ctx: PathContext, now: number): void {
  if (ctx.onRelay?.confirmedAt != null) ctx.pathSince = now;
  ctx.onRelay = null;
}

/** A handshake while on the relay: the leg's confirmation, or its freshness once confirmed. */
export function observeRelay(
  ctx: PathContext,
  lastHandshakeMs: number,
  isNew: boolean,
  now: number,
): PathEffect[] {
  const leg = ctx.onRelay!;
  if (leg.confirmedAt !== null) {
    if (isNew) ctx.lastAliveAt = now;
    return [];
  }
  if (!leg.isFresh(lastHandshakeMs)) return [];
  return confirmRelay(ctx, leg, now - leg.since, now);
}

export function confirmRelay(ctx: PathContext, leg: RelayLeg, elapsedMs: number, now: number): PathEffect[] {
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
export function adoptRelay(ctx: PathContext, now: number): PathEffect[] {
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
export function lostToRelay(ctx: PathContext, endpoint: string, now: number): PathEffect[] {
  ctx.backOffFromDirect(now);
  ctx.endpoint = endpoint;
  return [];
}

/** While on the relay: the leader's re-adds until it works, and a fresh re-add once it went stale. */
export function relayTick(ctx: PathContext, now: number): PathEffect[] {
  const leg = ctx.onRelay!;
  if (leg.confirmedAt === null) return leg.retryDue(now) ? [ctx.readd(leg.relay.wgEndpoint)] : [];
  return now - ctx.lastAliveAt > ctx.t.staleAfterMs ? toRelay(ctx, now) : [];
}

/** When the relay leg wants a wake-up: its confirmation window, or its going stale; null: none. */
export function relayWakeAt(ctx: PathContext, now: number): number | null {
  const leg = ctx.onRelay;
  if (leg === null) return null;
  return leg.confirmedAt === null ? leg.nextWakeAt(now) : ctx.lastAliveAt + ctx.t.staleAfterMs + 1;
}
