import { MAX_PUNCH_CANDIDATES, type PathReportMessage } from '@trellis/proto';
import type { CoreContext, OnlineDevice } from './core-context';
import { newPunchPart, type PairRecord } from './pair-records';
import type { PairDevice } from './pair-types';
import { candidatesFor, punchable } from './punch-plan';

/** Per-candidate deadline when a side is behind a symmetric NAT. */
const SYMMETRIC_DEADLINE_MS = 800;
/** Attempts of a pair whose reports are still recognised. */
const KEEP_ATTEMPTS = 4;
const KEEP_COUNTED = 16;

/**
 * The side that must lead a punch, or null (agents then use key order): behind a symmetric NAT
 * facing one that is not, only its own packets can reach the other (which cannot know its port),
 * so it initiates last and keeps retrying. Measured: with key order, address-restricted ↔ symmetric
 * failed its first punch whenever the address-restricted side led (1.8 s instead of 0.2 s).
 */
export function leaderOf(a: PairDevice, b: PairDevice): string | null {
  const aSym = a.mappingType === 'endpoint-dependent';
  const bSym = b.mappingType === 'endpoint-dependent';
  if (aSym === bSym) return null;
  return aSym ? a.id : b.id;
}

/** Punches the pair in `delayMs`, unless one is already due sooner. */
export function schedulePunch(ctx: CoreContext, pair: PairRecord, delayMs: number): void {
  const at = ctx.now + delayMs;
  if (pair.punch.dueAt !== null && pair.punch.dueAt <= at) return;
  pair.punch.dueAt = at;
  ctx.timers.push(at, { kind: 'punch', pair });
}

/** Forgets punching history (a side reconnected or went away: its agent starts from scratch). */
export function resetPunch(ctx: CoreContext, pair: PairRecord): void {
  ctx.table.clearAttempts(pair);
  pair.punch = newPunchPart();
}

/**
 * The punch is due: both sides get the other's candidates, unless a direct path works, the NAT
 * kinds rule one out, or a side's reflexive address is not fresh yet.
 */
export function firePunch(ctx: CoreContext, pair: PairRecord): void {
  pair.punch.dueAt = null;
  const da = ctx.online(pair.a);
  const db = ctx.online(pair.b);
  if (!da || !db || pair.direct.size === 2) return;
  const a = da.view;
  const b = db.view;
  if (!punchable(a, b, ctx.opts.reflectorsRun)) {
    ctx.log('info', 'punch skipped: no UDP seen from a side yet, or both NATs symmetric', {
      a: a.id,
      b: b.id,
    });
    return;
  }
  const waitUntil = Math.max(freshUntil(ctx, a.id), freshUntil(ctx, b.id));
  if (waitUntil > ctx.now) {
    schedulePunch(ctx, pair, waitUntil - ctx.now);
    return;
  }
  if (waitUntil > 0) {
    // Agents re-initiate to the reflectors when they connect: not seen since means no UDP gets
    // out (the relay's case). A later observation punches the pair.
    ctx.log('info', 'punch skipped: no UDP seen from a side since it came online', { a: a.id, b: b.id });
    return;
  }
  const forA = candidatesFor(a, b).slice(0, MAX_PUNCH_CANDIDATES);
  const forB = candidatesFor(b, a).slice(0, MAX_PUNCH_CANDIDATES);
  if (forA.length === 0 || forB.length === 0) return;
  const sig = JSON.stringify([forA, forB]);
  if (sig === pair.punch.lastSig) return;
  pair.punch.lastSig = sig;
  const attemptId = ctx.opts.newAttemptId();
  ctx.table.addAttempt(pair, attemptId, KEEP_ATTEMPTS);
  // Towards a symmetric NAT success comes within a few round trips or not at all (then the relay).
  const edm = a.mappingType === 'endpoint-dependent' || b.mappingType === 'endpoint-dependent';
  const deadlineMs = edm ? Math.min(ctx.opts.deadlineMs, SYMMETRIC_DEADLINE_MS) : ctx.opts.deadlineMs;
  pair.punch.sentAt = ctx.now;
  ctx.effects.push({ kind: 'punch', attemptId, a, b, forA, forB, deadlineMs, leader: leaderOf(a, b) });
}

/** A punch went out less than a candidate deadline ago: its agents are still trying it. */
export function punchInFlight(ctx: CoreContext, pair: PairRecord): boolean {
  const sent = pair.punch.sentAt;
  return sent !== null && ctx.now - sent < ctx.opts.deadlineMs;
}

/**
 * 0 when the device's reflexive candidates are fresh (all the reflectors saw since it came online
 * are in the netmap), else until when to wait for them (in the past: waited in vain).
 */
function freshUntil(ctx: CoreContext, id: string): number {
  const d = ctx.online(id);
  if (!d || !ctx.opts.tracksReflexive || isFresh(d)) return 0;
  return d.presence.since + ctx.opts.freshWaitMs;
}

/** All the reflectors saw of the device since it came online is in its netmap candidates. */
export function isFresh(d: OnlineDevice): boolean {
  // Any kind: behind a 1:1 port mapping the reflexive address is the port-mapped one (listed once).
  const inNetmap = (ep: string) => d.view.candidates.some((c) => c.endpoint === ep);
  return d.presence.seen.length > 0 && d.presence.seen.every(inNetmap);
}

/**
 * A `failed` report. Any failure, from either side and of any attempt (the agents' own ones too:
 * one side can believe in a path the other lost), makes the pair punched again: at once after the
 * first failure, then with backoff. Both sides report one failed punch: it counts once.
 */
export function punchFailed(ctx: CoreContext, pair: PairRecord, from: string, r: PathReportMessage): void {
  const p = pair.punch;
  const own = p.attempts.includes(r.attemptId);
  if (own) {
    p.attempts = p.attempts.filter((x) => x !== r.attemptId);
    ctx.table.byAttempt.delete(r.attemptId);
  }
  const failureId = own || r.attemptId.startsWith('punch:') ? r.attemptId : `${from}/${r.attemptId}`;
  if (p.counted.includes(failureId)) return;
  p.counted.push(failureId);
  if (p.counted.length > KEEP_COUNTED) p.counted.shift();
  p.failures += 1;
  p.lastSig = null;
  const delay =
    p.failures === 1
      ? ctx.opts.settleMs
      : Math.min(ctx.opts.backoffMaxMs, ctx.opts.backoffInitialMs * 2 ** (p.failures - 2));
  ctx.log('info', 'path failed', {
    deviceId: from,
    peerId: r.peerId,
    attemptId: r.attemptId,
    retryInMs: delay,
  });
  schedulePunch(ctx, pair, delay);
}
