import type { RelayAllocationRecord, RelayHandle } from '../relay/relay-directory';
import type { CoreContext } from './core-context';
import type { PairRecord, RelayReason } from './pair-records';
import { relayPathMessage } from './relay-messages';
import { needsRelayNow } from './relay-need';

/**
 * The relay half of a pair (ARCHITECTURE "Relay by port allocation"): relayed at once when a direct
 * path cannot work (both NATs symmetric, or a side's network blocks UDP), and after a failed punch
 * (punching goes on with backoff meanwhile). Released once both agents report a direct path for
 * the grace, when a device stays offline past its grace, or when the allocation expires.
 */

/** Relays the pair now if a direct path cannot work. */
export function evaluateRelay(ctx: CoreContext, pair: PairRecord): void {
  if (!ctx.opts.relaysEnabled || pair.relay.phase !== 'none' || pair.direct.size === 2) return;
  const da = ctx.online(pair.a);
  const db = ctx.online(pair.b);
  if (!da || !db) return;
  const side = (d: typeof da) => ({
    ...d.view,
    onlineForMs: ctx.now - d.presence.since,
    udpUnseen: ctx.udpUnseen(d.view.id),
  });
  const opts = { reflectorsRun: ctx.opts.reflectorsRun, udpWaitMs: ctx.opts.udpWaitMs };
  if (needsRelayNow(side(da), side(db), opts)) wantRelay(ctx, pair, 'no-direct-path');
}

export function wantRelay(ctx: CoreContext, pair: PairRecord, reason: RelayReason): void {
  if (!ctx.opts.relaysEnabled) return;
  ctx.log('info', 'relaying pair', { a: pair.a, b: pair.b, reason });
  allocate(ctx, pair, reason, null, []);
}

function allocate(
  ctx: CoreContext,
  pair: PairRecord,
  reason: RelayReason,
  moving: RelayAllocationRecord | null,
  exclude: readonly string[],
): void {
  const a = ctx.view(pair.a);
  const b = ctx.view(pair.b);
  if (!a || !b) return;
  const generation = ctx.nextGeneration();
  ctx.table.setRelay(pair, { phase: 'allocating', reason, generation, moving });
  ctx.effects.push({ kind: 'allocate', pairKey: pair.key, generation, a, b, exclude });
}

export function allocated(
  ctx: CoreContext,
  pair: PairRecord | undefined,
  generation: number,
  record: RelayAllocationRecord,
  relay: RelayHandle,
): void {
  const r = pair?.relay;
  if (!pair || r?.phase !== 'allocating' || r.generation !== generation) {
    // The pair stopped needing it while the relay answered.
    ctx.effects.push({ kind: 'release', allocationId: record.allocationId });
    return;
  }
  ctx.table.setRelay(pair, {
    phase: 'active',
    reason: r.reason,
    allocation: { record, relay },
    tcpSides: new Set(),
  });
  for (const id of [pair.a, pair.b]) sendRelay(ctx, pair, id);
  const fields = {
    a: pair.a,
    b: pair.b,
    relay: relay.name,
    allocationId: record.allocationId,
    port: record.port,
  };
  ctx.log('info', r.moving ? 'relay path moved' : 'relay path allocated', fields);
}

export function allocationFailed(
  ctx: CoreContext,
  pair: PairRecord | undefined,
  generation: number,
  hadRelays: boolean,
): void {
  const r = pair?.relay;
  if (!pair || r?.phase !== 'allocating' || r.generation !== generation) return;
  if (r.moving) tellReleased(ctx, pair, r.moving.allocationId);
  const retryAt = hadRelays ? ctx.now + ctx.opts.retryMs : null;
  ctx.table.setRelay(pair, { phase: 'waiting', reason: r.reason, retryAt });
  if (retryAt !== null) ctx.timers.push(retryAt, { kind: 'retry', pair });
  const fields = { a: pair.a, b: pair.b, ...(hadRelays ? { retryInMs: ctx.opts.retryMs } : {}) };
  // Without any relay, one coming up (relay-up) tries again.
  ctx.log(
    'warn',
    hadRelays ? 'no relay could allocate for the pair' : 'no relay available for the pair',
    fields,
  );
}

/** A waiting pair tries again (its retry time, or a relay came up). */
export function retryRelay(ctx: CoreContext, pair: PairRecord): void {
  const r = pair.relay;
  if (r.phase === 'waiting' && ctx.bothOnline(pair)) allocate(ctx, pair, r.reason, null, []);
}

/** A relay went away for good: the pair moves to another relay and both agents get the new one. */
export function relayLost(ctx: CoreContext, pair: PairRecord, relayId: string): void {
  const r = pair.relay;
  if (r.phase !== 'active' || r.allocation.relay.id !== relayId) return;
  allocate(ctx, pair, r.reason, r.allocation.record, [relayId]);
}

/** Tells a connected side which allocation reaches its peer (over TCP when its UDP is blocked). */
export function sendRelay(ctx: CoreContext, pair: PairRecord, to: string): void {
  const r = pair.relay;
  if (r.phase !== 'active' || !ctx.online(to)) return;
  const peer = ctx.view(to === pair.a ? pair.b : pair.a);
  if (!peer) return;
  const msg = relayPathMessage(peer, r.allocation.record, r.allocation.relay, ctx.wantsTcp(to));
  if (!msg) return;
  if (msg.tcp) r.tcpSides.add(to);
  else r.tcpSides.delete(to);
  ctx.effects.push({ kind: 'send', to, msg });
}

/** Sends the relay message again to a side whose transport (UDP or TCP) should change. */
export function resendIfTransportChanged(ctx: CoreContext, pair: PairRecord, id: string): void {
  const r = pair.relay;
  if (r.phase === 'active' && ctx.wantsTcp(id) !== r.tcpSides.has(id)) sendRelay(ctx, pair, id);
}

/** Stops relaying the pair: connected agents are told, then the relay frees the port. */
export function releaseRelay(ctx: CoreContext, pair: PairRecord, why: string): void {
  pair.releaseAt = null;
  const r = pair.relay;
  if (r.phase === 'none') return;
  if (r.phase === 'active') {
    const { allocationId } = r.allocation.record;
    tellReleased(ctx, pair, allocationId);
    ctx.effects.push({ kind: 'release', allocationId });
  }
  ctx.table.setRelay(pair, { phase: 'none' });
  ctx.log('info', 'relay path released', { a: pair.a, b: pair.b, why });
}

/** The relay closed the allocation itself: agents stop using it, there is nothing to free. */
export function relayExpired(ctx: CoreContext, pair: PairRecord): void {
  const r = pair.relay;
  if (r.phase !== 'active') return;
  tellReleased(ctx, pair, r.allocation.record.allocationId);
  pair.releaseAt = null;
  ctx.table.setRelay(pair, { phase: 'none' });
  ctx.log('info', 'relay path released', { a: pair.a, b: pair.b, why: 'allocation expired' });
}

function tellReleased(ctx: CoreContext, pair: PairRecord, allocationId: string): void {
  for (const [to, peerId] of [
    [pair.a, pair.b],
    [pair.b, pair.a],
  ] as const)
    if (ctx.online(to))
      ctx.effects.push({ kind: 'send', to, msg: { type: 'relay-release', peerId, allocationId } });
}
