import type { PathReportMessage, PathWantMessage, PunchMessage } from '@trellis/proto';
import {
  type HandshakeObservation,
  type PathEffect,
  PathManager,
  type PathTimings,
  type RelayPath,
} from '../../src/path';

export const SELF_KEY = `A${'A'.repeat(42)}=`;
export const PEER_KEY = `B${'A'.repeat(42)}=`;
export const PEER_ID = '6f1c1b8e-3c1d-4b7a-9a55-2f0d8a1b2c3d';
export const T0 = 1_700_000_000_000;

/** Decides, for a re-add at `at` toward `endpoint`, after how many ms a handshake completes (null: never). */
export type Responder = (endpoint: string, at: number) => number | null;

interface FakePeer {
  endpoint: string | null;
  lastHandshakeMs: number;
  /** A handshake the responder promised, cancelled by the next re-add (as WireGuard drops its state). */
  pending: { at: number; endpoint: string } | null;
  /** Byte counters as UAPI reports them (a re-add resets them). */
  txBytes: number;
  rxBytes: number;
  persistentKeepalive: boolean;
}

/**
 * Drives a PathManager with a fake clock and a fake WireGuard: carries out effects, wakes it when it
 * asked, and feeds it the fake peer's handshake state first, as the agent will.
 */
export class Scenario {
  now = T0;
  readonly mgr: PathManager;
  readonly reports: PathReportMessage[] = [];
  readonly wants: PathWantMessage[] = [];
  readonly log: Array<{ at: number; effect: PathEffect }> = [];
  readonly wg = new Map<string, FakePeer>();
  wakeAt: number | null = null;
  responder: Responder = () => null;

  /**
   * The leader's held-back first initiation is off unless a test sets it, so the retry schedules
   * below read from the candidate's start (peer-path-machine.test covers the delay itself).
   */
  constructor(timings: Partial<PathTimings> = {}, selfKey = SELF_KEY) {
    this.mgr = new PathManager(selfKey, { leaderDelayMs: 0, ...timings });
  }

  apply(effects: PathEffect[]): PathEffect[] {
    this.wakeAt = null;
    for (const effect of effects) {
      this.log.push({ at: this.now, effect });
      switch (effect.type) {
        case 'schedule-tick':
          this.wakeAt = effect.at;
          break;
        case 'send':
          if (effect.message.type === 'path') this.reports.push(effect.message);
          else this.wants.push(effect.message);
          break;
        case 'set-endpoint':
          this.peer(effect.publicKey).endpoint = effect.endpoint;
          this.peer(effect.publicKey).persistentKeepalive = effect.keepalive;
          break;
        case 'keepalive':
          this.peer(effect.publicKey).persistentKeepalive = effect.on;
          break;
        case 'readd-peer': {
          const p = this.peer(effect.publicKey);
          p.endpoint = effect.endpoint;
          p.lastHandshakeMs = 0;
          p.persistentKeepalive = true;
          p.txBytes = 148; // the fresh initiation
          p.rxBytes = 0;
          const delay = this.responder(effect.endpoint, this.now);
          p.pending = delay === null ? null : { at: this.now + delay, endpoint: effect.endpoint };
          break;
        }
      }
    }
    return effects;
  }

  peer(publicKey: string): FakePeer {
    let p = this.wg.get(publicKey);
    if (!p) {
      p = {
        endpoint: null,
        lastHandshakeMs: 0,
        pending: null,
        txBytes: 0,
        rxBytes: 0,
        persistentKeepalive: false,
      };
      this.wg.set(publicKey, p);
    }
    return p;
  }

  /** A handshake happens now (the peer initiated, or WireGuard's rekey), through `endpoint`. */
  handshake(publicKey: string, endpoint: string): void {
    const p = this.peer(publicKey);
    p.lastHandshakeMs = this.now;
    p.endpoint = endpoint;
  }

  /**
   * The host sends packets to the peer (default: WireGuard's initiation for a first packet, 148
   * bytes): what a dormant peer's demand looks like, tx growing with nothing back.
   */
  traffic(publicKey: string, txBytes = 148, rxBytes = 0): void {
    const p = this.peer(publicKey);
    p.txBytes += txBytes;
    p.rxBytes += rxBytes;
  }

  /**
   * Packets for the peer, then the wake-ups until `forMs` later: the demand that starts an attempt.
   * The counters are observed first (the agent's first look at a peer is its baseline, which would
   * otherwise swallow the packets).
   */
  demand(publicKey = PEER_KEY, forMs = 300): void {
    this.peer(publicKey);
    this.apply(this.mgr.observe(this.observations(), this.now));
    this.traffic(publicKey);
    this.runUntil(this.now + forMs);
  }

  observations(): HandshakeObservation[] {
    return [...this.wg].map(([publicKey, p]) => ({
      publicKey,
      lastHandshakeMs: p.lastHandshakeMs,
      endpoint: p.endpoint,
      txBytes: p.txBytes,
      rxBytes: p.rxBytes,
    }));
  }

  /** Advances the clock to `until`, waking the manager whenever it asked to be woken. */
  runUntil(until: number): void {
    for (let steps = 0; ; steps++) {
      if (steps > 100_000) throw new Error(`no progress at ${this.now - T0} ms: wake-up loop`);
      const pending = [...this.wg.values()].map((p) => p.pending?.at ?? Number.POSITIVE_INFINITY);
      const next = Math.min(this.wakeAt ?? Number.POSITIVE_INFINITY, ...pending);
      if (next > until) break;
      this.now = Math.max(this.now, next);
      for (const p of this.wg.values()) {
        if (p.pending && p.pending.at <= this.now) {
          p.lastHandshakeMs = p.pending.at;
          p.endpoint = p.pending.endpoint;
          p.pending = null;
        }
      }
      if (this.wakeAt !== null && this.wakeAt <= this.now) this.wake();
    }
    this.now = until;
  }

  wake(): void {
    this.apply(this.mgr.observe(this.observations(), this.now));
    this.apply(this.mgr.tick(this.now));
  }

  readdsSince(at: number): Array<{ at: number; endpoint: string }> {
    return this.log
      .filter((l) => l.at >= at && l.effect.type === 'readd-peer')
      .map((l) => ({ at: l.at, endpoint: (l.effect as { endpoint: string }).endpoint }));
  }
}

export function punchMessage(over: Partial<PunchMessage> = {}): PunchMessage {
  return {
    type: 'punch',
    attemptId: 'p1',
    peerId: PEER_ID,
    peerPublicKey: PEER_KEY,
    candidates: [
      { endpoint: '203.0.113.7:41000', kind: 'reflexive', priority: 100 },
      { endpoint: '192.168.1.7:51820', kind: 'lan', priority: 300 },
    ],
    startAt: T0 + 500,
    deadlineMs: 1000,
    ...over,
  };
}

export const RELAY_ENDPOINT = '192.0.2.99:40001';
export const ALLOCATION_ID = '3b2c1a09-8f7e-4d6c-9b5a-0a1b2c3d4e5f';

export function relayPath(over: Partial<RelayPath> = {}): RelayPath {
  return {
    allocationId: ALLOCATION_ID,
    relayId: '9d8c7b6a-5f4e-4d3c-8b2a-1a0b9c8d7e6f',
    relayName: 'relay-fra',
    endpoint: RELAY_ENDPOINT,
    wgEndpoint: RELAY_ENDPOINT,
    ...over,
  };
}
