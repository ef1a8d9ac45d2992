import { randomBytes } from 'node:crypto';
import { MAX_PUNCH_CANDIDATES, type PathReportMessage, type PunchMessage } from '@trellis/proto';
import type { Logger } from 'pino';
import { candidatesFor, type PunchSide, pairKey, punchable } from './punch-plan';

export interface PunchDevice extends PunchSide {
  id: string;
  publicKey: string;
}

export interface PunchCoordinatorOptions {
  /** The device as the netmap has it now (undefined: gone). */
  device(id: string): PunchDevice | undefined;
  /** Devices with a control connection on this instance. */
  connected(): Iterable<string>;
  send(deviceId: string, msg: PunchMessage): void;
  logger: Logger;
  now?: () => number;
  /** The control connection's measured round trip (null: not yet). */
  rttOf?(deviceId: string): number | null;
  /**
   * The endpoints this instance's reflectors saw the device key at since `since` (null: none yet).
   * A reconnected device's netmap still holds the reflexive address of its last run, which a
   * restart or a new network makes stale; punching waits (up to freshWaitMs) for a fresh one.
   */
  reflexiveSeenSince?(publicKey: string, since: number): readonly string[] | null;
  /** How long a pair waits for fresh reflexive addresses before punching with what it has. */
  freshWaitMs?: number;
  /**
   * How far ahead the shared start is when a side's round trip is unknown, and the cap otherwise
   * (then it is the slower round trip plus START_MARGIN_MS: the punch must reach both agents first).
   */
  startDelayMs?: number;
  /** Per-candidate deadline the agents get. */
  deadlineMs?: number;
  /** Wait this long after a change before punching, so bursts (online, then reflexive) send one punch. */
  settleMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** The broker runs endpoint reflectors: wait for both sides' reflexive candidates before punching. */
  reflectorsRun?: boolean;
}

interface PairState {
  timer: NodeJS.Timeout | null;
  /** When the timer fires (ms): an earlier schedule replaces a later one. */
  fireAt: number;
  /** The candidate lists last punched with; the same lists are not punched again unless one failed. */
  lastSig: string | null;
  failures: number;
  attempts: Set<string>;
  /** Devices of the pair whose agent reported a direct path and no failure since. */
  directSides: Set<string>;
  /** Recent failed attempts already counted. */
  countedFailures: string[];
}

/**
 * The side that must lead a punch, or null (agents then use key order): behind a symmetric NAT
 * facing one that is not, only its own packets can reach the other (which cannot know its port),
 * so it initiates last and keeps retrying. Measured: with key order, address-restricted ↔ symmetric
 * failed its first punch whenever the address-restricted side led (1.8 s instead of 0.2 s).
 */
export function leaderOf(a: PunchDevice, b: PunchDevice): string | null {
  const aSym = a.mappingType === 'endpoint-dependent';
  const bSym = b.mappingType === 'endpoint-dependent';
  if (aSym === bSym) return null;
  return aSym ? a.id : b.id;
}

/** Per-candidate deadline when a side is behind a symmetric NAT. */
const SYMMETRIC_DEADLINE_MS = 800;

/** Added to the slower control round trip for a punch's start: event loop and UAPI latency. */
const START_MARGIN_MS = 25;

/**
 * The broker side of hole punching (ARCHITECTURE "Hole punching, coordinated by the broker"). When
 * both devices of a pair are connected (here), their candidates change, or an attempt failed (with
 * backoff), both get a `punch` with the other's candidates and one start time in the broker's clock.
 * Pairs whose NAT classification rules out a direct path are not attempted.
 * Only pairs whose two control connections are on this instance are coordinated.
 */
export class PunchCoordinator {
  private readonly pairs = new Map<string, PairState>();
  private readonly attemptPair = new Map<string, string>();
  private readonly now: () => number;
  private readonly startDelayMs: number;
  private readonly deadlineMs: number;
  private readonly settleMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly freshWaitMs: number;
  /** When each connected device came online (coordinator clock). */
  private readonly onlineAt = new Map<string, number>();
  /** Online devices whose fresh reflexive address has not been seen yet. */
  private readonly awaitingFresh = new Set<string>();

  constructor(private readonly opts: PunchCoordinatorOptions) {
    this.now = opts.now ?? Date.now;
    this.startDelayMs = opts.startDelayMs ?? 300;
    this.deadlineMs = opts.deadlineMs ?? 1500;
    this.settleMs = opts.settleMs ?? 25;
    this.freshWaitMs = opts.freshWaitMs ?? 2_000;
    this.backoffInitialMs = opts.backoffInitialMs ?? 5_000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 300_000;
  }

  /** A device (re)connected: its agent starts from scratch, so punch even unchanged or direct pairs. */
  deviceOnline(id: string): void {
    this.onlineAt.set(id, this.now());
    if (this.opts.reflexiveSeenSince) this.awaitingFresh.add(id);
    for (const [key, pair] of this.pairs) {
      if (!key.split('|').includes(id)) continue;
      pair.lastSig = null;
      pair.directSides.clear();
    }
    this.deviceChanged(id);
  }

  /** A device's candidates / NAT type changed: punch it with every connected peer. */
  deviceChanged(id: string): void {
    for (const other of this.opts.connected()) if (other !== id) this.schedule(id, other, this.settleMs);
  }

  /** This instance's reflectors saw the device: once per connection that can unblock its pairs. */
  reflexiveObserved(id: string): void {
    if (this.awaitingFresh.delete(id)) this.deviceChanged(id);
  }

  deviceGone(id: string): void {
    this.onlineAt.delete(id);
    this.awaitingFresh.delete(id);
    for (const [key, pair] of this.pairs) {
      if (!key.split('|').includes(id)) continue;
      if (pair.timer) clearTimeout(pair.timer);
      for (const a of pair.attempts) this.attemptPair.delete(a);
      this.pairs.delete(key);
    }
  }

  /**
   * An agent's outcome. A pair both of whose agents report a direct path (punched, or found by the
   * agents themselves) is direct: candidate changes no longer punch it (WireGuard roaming keeps a
   * working path). Any failure, from either side and of any attempt (the agents' own ones too: one
   * side can believe in a path the other lost), makes the pair punched again: at once after the
   * first failure, then with backoff. A `relay` report (the relayed path works) is no failure.
   */
  report(deviceId: string, r: PathReportMessage): void {
    const key = pairKey(deviceId, r.peerId);
    const fromAttempt = this.attemptPair.get(r.attemptId);
    if (fromAttempt !== undefined && fromAttempt !== key) return; // not this device's attempt
    const pair = this.pairs.get(key) ?? this.newPair(key);
    if (r.result === 'direct') {
      pair.directSides.add(deviceId);
      if (pair.directSides.size === 2) pair.failures = 0;
      this.opts.logger.info(
        { deviceId, peerId: r.peerId, attemptId: r.attemptId, elapsedMs: r.elapsedMs },
        'path direct',
      );
      return;
    }
    if (r.result === 'relay') {
      // The relayed path works; the agents keep retrying direct, whose failures come as `failed`.
      pair.directSides.delete(deviceId);
      this.opts.logger.info(
        { deviceId, peerId: r.peerId, attemptId: r.attemptId, elapsedMs: r.elapsedMs },
        'path relay',
      );
      return;
    }
    if (fromAttempt !== undefined) {
      this.attemptPair.delete(r.attemptId);
      pair.attempts.delete(r.attemptId);
    }
    pair.directSides.delete(deviceId);
    // Both sides report a failed punch: it counts once.
    const failureId =
      fromAttempt !== undefined || r.attemptId.startsWith('punch:')
        ? r.attemptId
        : `${deviceId}/${r.attemptId}`;
    if (pair.countedFailures.includes(failureId)) return;
    pair.countedFailures.push(failureId);
    if (pair.countedFailures.length > 16) pair.countedFailures.shift();
    pair.failures += 1;
    pair.lastSig = null;
    const delay =
      pair.failures === 1
        ? this.settleMs
        : Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (pair.failures - 2));
    this.opts.logger.info(
      { deviceId, peerId: r.peerId, attemptId: r.attemptId, retryInMs: delay },
      'path failed',
    );
    const [a, b] = key.split('|') as [string, string];
    this.schedule(a, b, delay);
  }

  dispose(): void {
    for (const pair of this.pairs.values()) if (pair.timer) clearTimeout(pair.timer);
    this.pairs.clear();
    this.attemptPair.clear();
  }

  private newPair(key: string): PairState {
    const pair: PairState = {
      timer: null,
      fireAt: 0,
      lastSig: null,
      failures: 0,
      attempts: new Set(),
      directSides: new Set(),
      countedFailures: [],
    };
    this.pairs.set(key, pair);
    return pair;
  }

  private schedule(x: string, y: string, delayMs: number, replace = false): void {
    const key = pairKey(x, y);
    const pair = this.pairs.get(key) ?? this.newPair(key);
    const fireAt = this.now() + delayMs;
    if (pair.timer && !replace && pair.fireAt <= fireAt) return;
    if (pair.timer) clearTimeout(pair.timer);
    const state = pair;
    state.fireAt = fireAt;
    state.timer = setTimeout(() => {
      state.timer = null;
      this.punch(key, state);
    }, delayMs);
  }

  private punch(key: string, pair: PairState): void {
    const [aId, bId] = key.split('|') as [string, string];
    const connected = new Set(this.opts.connected());
    const a = this.opts.device(aId);
    const b = this.opts.device(bId);
    if (!a || !b || !connected.has(aId) || !connected.has(bId)) return;
    if (pair.directSides.size === 2) return; // a working path is not torn down for a new attempt
    if (!punchable(a, b, this.opts.reflectorsRun)) {
      this.opts.logger.info(
        { a: aId, b: bId },
        'punch skipped: no UDP seen from a side yet, or both NATs symmetric',
      );
      return;
    }
    const waitUntil = Math.max(this.freshUntil(aId, a), this.freshUntil(bId, b));
    if (waitUntil > this.now()) {
      this.schedule(aId, bId, waitUntil - this.now());
      return;
    }
    if (waitUntil > 0) {
      // Agents re-initiate to the reflectors when they connect: not seen since means no UDP gets
      // out (the relay's case). A later observation punches the pair (reflexiveObserved).
      this.opts.logger.info(
        { a: aId, b: bId },
        'punch skipped: no UDP seen from a side since it came online',
      );
      return;
    }
    const forA = candidatesFor(a, b).slice(0, MAX_PUNCH_CANDIDATES);
    const forB = candidatesFor(b, a).slice(0, MAX_PUNCH_CANDIDATES);
    if (forA.length === 0 || forB.length === 0) return;
    const sig = JSON.stringify([forA, forB]);
    if (sig === pair.lastSig) return;
    pair.lastSig = sig;
    const attemptId = `punch:${randomBytes(6).toString('hex')}`;
    // Attempts nobody reported on are forgotten after a few newer ones.
    for (const old of [...pair.attempts].slice(0, Math.max(0, pair.attempts.size - 3))) {
      pair.attempts.delete(old);
      this.attemptPair.delete(old);
    }
    pair.attempts.add(attemptId);
    this.attemptPair.set(attemptId, key);
    const startAt = this.now() + this.startDelay(aId, bId);
    // Towards a symmetric NAT success comes within a few round trips or not at all (then the relay).
    const edm = a.mappingType === 'endpoint-dependent' || b.mappingType === 'endpoint-dependent';
    const deadlineMs = edm ? Math.min(this.deadlineMs, SYMMETRIC_DEADLINE_MS) : this.deadlineMs;
    const base = { type: 'punch' as const, attemptId, startAt, deadlineMs };
    const lead = leaderOf(a, b);
    const role = (id: string) => (lead === null ? {} : { leader: lead === id });
    this.opts.send(aId, { ...base, ...role(aId), peerId: bId, peerPublicKey: b.publicKey, candidates: forA });
    this.opts.send(bId, { ...base, ...role(bId), peerId: aId, peerPublicKey: a.publicKey, candidates: forB });
    this.opts.logger.info({ a: aId, b: bId, attemptId, forA, forB }, 'punch sent');
  }

  /**
   * 0 when the device's reflexive candidates are fresh (all this instance saw since it came online
   * are in the netmap), else until when to wait for them (in the past: waited in vain).
   */
  private freshUntil(id: string, side: PunchDevice): number {
    const since = this.onlineAt.get(id);
    if (!this.opts.reflexiveSeenSince || since === undefined) return 0;
    const seen = this.opts.reflexiveSeenSince(side.publicKey, since);
    // Any kind: behind a 1:1 port mapping the reflexive address is the port-mapped one (listed once).
    const inNetmap = (ep: string) => side.candidates.some((c) => c.endpoint === ep);
    if (seen !== null && seen.length > 0 && seen.every(inNetmap)) return 0;
    return since + this.freshWaitMs;
  }

  private startDelay(aId: string, bId: string): number {
    const a = this.opts.rttOf?.(aId) ?? null;
    const b = this.opts.rttOf?.(bId) ?? null;
    if (a === null || b === null) return this.startDelayMs;
    return Math.min(this.startDelayMs, Math.ceil(Math.max(a, b)) + START_MARGIN_MS);
  }
}
