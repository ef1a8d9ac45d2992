import { randomBytes } from 'node:crypto';
import { MAX_PUNCH_CANDIDATES, type PathReportMessage, type PunchMessage } from '@trellis/proto';
import type { Logger } from 'pino';
import { candidatesFor, type PunchSide, punchable } from './punch-plan';

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
  /** How far ahead the shared start is; must cover delivery to both agents. */
  startDelayMs?: number;
  /** Per-candidate deadline the agents get. */
  deadlineMs?: number;
  /** Wait this long after a change before punching, so bursts (online, then reflexive) send one punch. */
  settleMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

interface PairState {
  timer: NodeJS.Timeout | null;
  /** The candidate lists last punched with; the same lists are not punched again unless one failed. */
  lastSig: string | null;
  failures: number;
  attempts: Set<string>;
}

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

  constructor(private readonly opts: PunchCoordinatorOptions) {
    this.now = opts.now ?? Date.now;
    this.startDelayMs = opts.startDelayMs ?? 300;
    this.deadlineMs = opts.deadlineMs ?? 1500;
    this.settleMs = opts.settleMs ?? 100;
    this.backoffInitialMs = opts.backoffInitialMs ?? 5_000;
    this.backoffMaxMs = opts.backoffMaxMs ?? 300_000;
  }

  /** A device (re)connected: its agent starts from scratch, so punch even unchanged pairs. */
  deviceOnline(id: string): void {
    for (const [key, pair] of this.pairs) if (key.split('|').includes(id)) pair.lastSig = null;
    this.deviceChanged(id);
  }

  /** A device's candidates / NAT type changed: punch it with every connected peer. */
  deviceChanged(id: string): void {
    for (const other of this.opts.connected()) if (other !== id) this.schedule(id, other, this.settleMs);
  }

  deviceGone(id: string): void {
    for (const [key, pair] of this.pairs) {
      if (!key.split('|').includes(id)) continue;
      if (pair.timer) clearTimeout(pair.timer);
      for (const a of pair.attempts) this.attemptPair.delete(a);
      this.pairs.delete(key);
    }
  }

  /** An agent's outcome: success resets the backoff; a failure retries the pair later. */
  report(deviceId: string, r: PathReportMessage): void {
    const key = this.attemptPair.get(r.attemptId);
    if (key === undefined || !key.split('|').includes(deviceId)) return;
    const pair = this.pairs.get(key);
    if (!pair) return;
    this.attemptPair.delete(r.attemptId); // the first report of an attempt decides
    pair.attempts.delete(r.attemptId);
    const [a, b] = key.split('|') as [string, string];
    if (r.result === 'direct') {
      pair.failures = 0;
      this.opts.logger.info({ a, b, attemptId: r.attemptId, elapsedMs: r.elapsedMs }, 'punch succeeded');
      return;
    }
    pair.failures += 1;
    pair.lastSig = null;
    const delay = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (pair.failures - 1));
    this.opts.logger.info({ a, b, attemptId: r.attemptId, retryInMs: delay }, 'punch failed');
    this.schedule(a, b, delay, true);
  }

  dispose(): void {
    for (const pair of this.pairs.values()) if (pair.timer) clearTimeout(pair.timer);
    this.pairs.clear();
    this.attemptPair.clear();
  }

  private schedule(x: string, y: string, delayMs: number, replace = false): void {
    const key = x < y ? `${x}|${y}` : `${y}|${x}`;
    let pair = this.pairs.get(key);
    if (!pair) {
      pair = { timer: null, lastSig: null, failures: 0, attempts: new Set() };
      this.pairs.set(key, pair);
    }
    if (pair.timer && !replace) return;
    if (pair.timer) clearTimeout(pair.timer);
    const state = pair;
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
    if (!punchable(a, b)) {
      this.opts.logger.info(
        { a: aId, b: bId },
        'punch skipped: both NATs map per destination (needs the relay)',
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
    const startAt = this.now() + this.startDelayMs;
    const base = { type: 'punch' as const, attemptId, startAt, deadlineMs: this.deadlineMs };
    this.opts.send(aId, { ...base, peerId: bId, peerPublicKey: b.publicKey, candidates: forA });
    this.opts.send(bId, { ...base, peerId: aId, peerPublicKey: a.publicKey, candidates: forB });
    this.opts.logger.info({ a: aId, b: bId, attemptId, forA, forB }, 'punch sent');
  }
}
