import type { Candidate, MappingType, PathReportMessage } from '@trellis/proto';
import fc from 'fast-check';
import { PairPathCore } from '../../../src/pair-paths/pair-path-core';
import {
  DEFAULT_PAIR_PATH_OPTIONS,
  type PairDevice,
  type PairEffect,
  pairKey,
} from '../../../src/pair-paths/pair-types';
import type { RelayHandle } from '../../../src/relay/relay-directory';

/**
 * Random event sequences against the core, with simulated agents and relays that answer its
 * effects as real ones would, then a quiet period in which every pair is wanted. Invariants: every
 * wanted pair of online devices has a path, both agents were told the same one, a pair the NAT
 * kinds allow is direct (and then forgotten), and nothing is kept for devices or pairs that no
 * longer exist or are not in use.
 */

type Nat = 'eim' | 'sym' | 'blocked';
const N = 5;
const ids = Array.from({ length: N }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
const key = (i: number) => `${String.fromCharCode(65 + i).repeat(42)}E=`;

type Step =
  | { op: 'online' | 'offline' | 'remove' | 'roam' | 'relay-down' | 'relay-up'; i: number }
  | { op: 'want'; i: number; j: number }
  | { op: 'wait'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('online' as const), i: fc.nat(N - 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('offline' as const), i: fc.nat(N - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), i: fc.nat(N - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('roam' as const), i: fc.nat(N - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('relay-down' as const), i: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('relay-up' as const), i: fc.nat(1) }) },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 20_000 }) }),
  },
);

/** What an agent believes about its path to a peer. */
type AgentPath = { kind: 'direct' } | { kind: 'relay'; allocationId: string };

class World {
  now = 1_000_000;
  private seq = 0;
  readonly core = new PairPathCore({
    ...DEFAULT_PAIR_PATH_OPTIONS,
    reflectorsRun: true,
    tracksReflexive: true,
    relaysEnabled: true,
    newAttemptId: () => `punch:${++this.seq}`,
  });
  readonly online = new Set<number>();
  readonly removed = new Set<number>();
  readonly port = Array.from({ length: N }, () => 40000);
  readonly relaysUp = [true, true];
  /** Agent i's path to peer j, keyed `${i}>${j}`. */
  readonly agents = new Map<string, AgentPath>();
  private readonly pending: Array<{ at: number; run: () => void }> = [];
  private allocations = 0;
  private readonly relayOf = new Map<string, number>();

  constructor(readonly nat: Nat[]) {}

  view(i: number): PairDevice {
    const host = `192.0.2.${10 + i}`;
    const candidates: Candidate[] =
      this.nat[i] === 'blocked'
        ? [{ endpoint: `${host}:51820`, kind: 'observed', priority: 1000 }]
        : [{ endpoint: `${host}:${this.port[i]}`, kind: 'reflexive', priority: 2000 }];
    const mappingType: MappingType | null =
      this.nat[i] === 'sym' ? 'endpoint-dependent' : this.nat[i] === 'eim' ? 'endpoint-independent' : null;
    return { id: ids[i]!, publicKey: key(i), candidates, mappingType };
  }

  private seen(i: number): string[] {
    return this.view(i).candidates.map((c) => c.endpoint);
  }

  /** Whether a direct path really works between two devices' NATs. */
  directWorks(i: number, j: number): boolean {
    const [x, y] = [this.nat[i], this.nat[j]];
    return x !== 'blocked' && y !== 'blocked' && !(x === 'sym' && y === 'sym');
  }

  apply(s: Step): void {
    if (s.op === 'wait') {
      this.advance(s.ms);
      return;
    }
    if (s.op === 'relay-down' || s.op === 'relay-up') {
      this.relaysUp[s.i] = s.op === 'relay-up';
      if (s.op === 'relay-up') this.feed({ kind: 'relay-up' });
      else this.feed({ kind: 'relay-down', relayId: `relay-${s.i}` });
      return;
    }
    if (s.op === 'want') {
      // WireGuard has packets for the peer (the agent's side of wanting is its own concern).
      if (this.online.has(s.i))
        this.feed({ kind: 'want', from: ids[s.i]!, peerId: ids[s.j]!, relayed: false });
      return;
    }
    const i = s.i;
    if (this.removed.has(i)) return;
    if (s.op === 'online') {
      this.online.add(i);
      for (const k of [...this.agents.keys()]) if (k.startsWith(`${i}>`)) this.agents.delete(k);
      this.feed({ kind: 'online', device: this.view(i) });
      // The agent handshakes with the reflectors at once.
      if (this.nat[i] !== 'blocked') this.later(20, () => this.observe(i));
    } else if (s.op === 'offline' || s.op === 'remove') {
      if (!this.online.delete(i) && s.op === 'offline') return;
      if (s.op === 'remove') this.removed.add(i);
      this.feed(s.op === 'remove' ? { kind: 'removed', id: ids[i]! } : { kind: 'offline', id: ids[i]! });
    } else if (s.op === 'roam' && this.online.has(i) && this.nat[i] !== 'blocked') {
      this.port[i]! += 1;
      this.observe(i); // the reflectors see it first, then the netmap changes
      this.later(30, () => this.feed({ kind: 'changed', device: this.view(i) }));
    }
  }

  private observe(i: number): void {
    if (this.online.has(i)) this.feed({ kind: 'reflexive-seen', id: ids[i]!, endpoints: this.seen(i) });
  }

  private later(ms: number, run: () => void): void {
    this.pending.push({ at: this.now + ms, run });
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      this.pending.sort((x, y) => x.at - y.at);
      const due = this.core.nextDueAt();
      const next = this.pending[0];
      const at = Math.min(next?.at ?? Infinity, due ?? Infinity);
      if (at > end) break;
      this.now = Math.max(this.now, at);
      if (next && next.at <= this.now) {
        this.pending.shift();
        next.run();
      } else this.feed({ kind: 'tick' });
    }
    this.now = end;
  }

  feed(e: Parameters<PairPathCore['handle']>[0]): void {
    for (const effect of this.core.handle(e, this.now)) this.run(effect);
  }

  private index(id: string): number {
    return ids.indexOf(id);
  }

  private report(from: number, peer: number, attemptId: string, result: PathReportMessage['result']): void {
    if (!this.online.has(from)) return; // the agent is gone, and so is its report
    if (result === 'direct') this.agents.set(`${from}>${peer}`, { kind: 'direct' });
    const report: PathReportMessage = { type: 'path', peerId: ids[peer]!, attemptId, result, elapsedMs: 1 };
    this.feed({ kind: 'path-report', from: ids[from]!, report });
  }

  private run(e: PairEffect): void {
    if (e.kind === 'punch') {
      const [a, b] = [this.index(e.a.id), this.index(e.b.id)];
      const works = this.directWorks(a, b) && this.online.has(a) && this.online.has(b);
      const result = works ? 'direct' : 'failed';
      this.later(works ? 200 : e.deadlineMs, () => {
        this.report(a, b, e.attemptId, result);
        this.report(b, a, e.attemptId, result);
      });
    } else if (e.kind === 'send') {
      const to = this.index(e.to);
      const peer = this.index(e.msg.peerId);
      if (!this.online.has(to)) throw new Error('a message to a device that is not online');
      if (e.msg.type === 'relay') {
        this.agents.set(`${to}>${peer}`, { kind: 'relay', allocationId: e.msg.allocationId });
        this.later(50, () => this.report(to, peer, 'local:relay', 'relay'));
      } else {
        const held = this.agents.get(`${to}>${peer}`);
        if (held?.kind === 'relay' && held.allocationId === e.msg.allocationId)
          this.agents.delete(`${to}>${peer}`);
      }
    } else if (e.kind === 'allocate') {
      const r = [0, 1].find((x) => this.relaysUp[x] && !e.exclude.includes(`relay-${x}`));
      if (r === undefined) {
        // As the driver: with no relay to ask, the answer comes at once.
        this.feed({
          kind: 'allocation-failed',
          pairKey: e.pairKey,
          generation: e.generation,
          hadRelays: false,
        });
        return;
      }
      this.later(5, () => {
        const allocationId = `alloc-${++this.allocations}`;
        this.relayOf.set(allocationId, r);
        const relay: RelayHandle = {
          id: `relay-${r}`,
          name: `relay-${r}`,
          accountId: null,
          publicAddress: `203.0.113.${r + 1}`,
          tcp: undefined,
          rttMs: () => null,
          allocations: () => 0,
        };
        const sides = [e.a.publicKey, e.b.publicKey].map((publicKey) => ({ publicKey, bound: null }));
        const record = {
          allocationId,
          relayId: relay.id,
          accountId: 'acc',
          port: 40000 + this.allocations,
          sides: sides as never,
        };
        this.feed({ kind: 'allocated', pairKey: e.pairKey, generation: e.generation, record, relay });
      });
    }
  }

  /** Invariants that hold after any event. */
  checkAlways(): void {
    for (const pair of this.core.pairs()) {
      for (const id of [pair.a, pair.b]) expect(this.core.device(id)).toBeDefined();
      if (pair.relay.phase === 'none')
        for (const id of [pair.a, pair.b]) expect(this.core.device(id)?.presence.state).toBe('online');
    }
    for (const i of this.removed) {
      expect(this.core.device(ids[i]!)).toBeUndefined();
    }
  }

  /** After a quiet period in which every pair of online devices was wanted, with both relays up. */
  checkSettled(): void {
    const on = [...this.online].sort();
    const held = new Map([...this.core.pairs()].map((p) => [p.key, p]));
    for (const i of on)
      for (const j of on) {
        if (i >= j) continue;
        const pair = held.get(pairKey(ids[i]!, ids[j]!));
        const ab = this.agents.get(`${i}>${j}`);
        const ba = this.agents.get(`${j}>${i}`);
        if (this.directWorks(i, j)) {
          // A pair the NATs allow goes direct on both sides, and the broker forgets it.
          expect([ab, ba]).toEqual([{ kind: 'direct' }, { kind: 'direct' }]);
          expect(pair).toBeUndefined();
        } else {
          // Both sides were told the same allocation, the one the core holds.
          expect(pair?.relay.phase).toBe('active');
          const r = pair!.relay as Extract<NonNullable<typeof pair>['relay'], { phase: 'active' }>;
          const allocationId = r.allocation.record.allocationId;
          expect([ab, ba]).toEqual([
            { kind: 'relay', allocationId },
            { kind: 'relay', allocationId },
          ]);
        }
      }
    // State only for pairs in use: what the core still holds is relayed.
    for (const pair of held.values()) expect(pair.relay.phase).toBe('active');
  }
}

describe('PairPathCore properties', () => {
  it('reaches one path per wanted pair, told alike to both sides, direct where the NATs allow, and keeps nothing stale', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom<Nat>('eim', 'sym', 'blocked'), { minLength: N, maxLength: N }),
        fc.array(step, { maxLength: 60 }),
        (nat, steps) => {
          const w = new World(nat);
          for (const s of steps) {
            w.apply(s);
            w.checkAlways();
          }
          // Quiet: relays back, every device not removed online, time for grace periods and retries.
          for (const i of [0, 1]) if (!w.relaysUp[i]) w.apply({ op: 'relay-up', i });
          for (let i = 0; i < N; i++) if (!w.removed.has(i) && !w.online.has(i)) w.apply({ op: 'online', i });
          w.advance(5_000);
          for (const i of w.online) for (const j of w.online) if (i < j) w.apply({ op: 'want', i, j });
          w.advance(120_000);
          w.checkAlways();
          w.checkSettled();
          // Everyone leaves: after the offline grace nothing is kept.
          for (const i of [...w.online]) w.apply({ op: 'offline', i });
          w.advance(20_000);
          expect(w.core.deviceCount).toBe(0);
          expect(w.core.pairCount).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
