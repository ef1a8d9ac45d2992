import { DEFAULT_PATH_TIMINGS } from '../../src/path';
import { NATS, type NatSpec, type PairResult, runPair, SIM_RELAY } from './nat-sim';

/** The expectation, written out rather than derived from the model. */
function expectedDirect(a: NatSpec, b: NatSpec): boolean {
  if (a.blockUdp || b.blockUdp) return false;
  if (a.portMapped || b.portMapped || a.mapping === null || b.mapping === null) return true;
  const symA = a.mapping === 'dependent';
  const symB = b.mapping === 'dependent';
  if (symA && symB) return false;
  if (symA || symB) return (symA ? b : a).filtering !== 'port';
  return true;
}

const kinds = Object.values(NATS);
const pairs: Array<[NatSpec, NatSpec]> = [];
for (let i = 0; i < kinds.length; i++)
  for (let j = i; j < kinds.length; j++) pairs.push([kinds[i]!, kinds[j]!]);

function describeResult(r: PairResult): string {
  return `${r.a.path}/${r.b.path} after ${r.bothDirectAfterMs} ms; A: ${JSON.stringify(r.reportsA)} B: ${JSON.stringify(r.reportsB)}`;
}

describe('two PathManagers over a simulated NAT pair', () => {
  describe.each([
    { label: 'close, synced clocks', wanOneWayMs: 15, skewA: 0, skewB: 0 },
    {
      label: 'far (300 ms RTT), skewed clocks, imperfect offsets',
      wanOneWayMs: 150,
      skewA: 4000,
      skewB: -2500,
      offsetErrorA: 12,
      offsetErrorB: -9,
    },
    {
      label: 'far, and the broker also hands out unreachable LAN candidates',
      wanOneWayMs: 150,
      skewA: 4000,
      skewB: -2500,
      offsetErrorA: 12,
      offsetErrorB: -9,
      lanCandidatesAlways: true,
    },
  ])('$label', (net) => {
    it.each(pairs.map(([a, b]) => ({ a, b, name: `${a.name} x ${b.name}` })))('$name', ({ a, b }) => {
      const r = runPair(a, b, net);
      if (expectedDirect(a, b)) {
        expect({ ok: r.a.path !== 'none' && r.b.path !== 'none', why: describeResult(r) }).toEqual({
          ok: true,
          why: expect.any(String),
        });
        expect(r.reportsA.filter((x) => x.result === 'direct').length).toBeGreaterThan(0);
        expect(r.reportsB.filter((x) => x.result === 'direct').length).toBeGreaterThan(0);
        // Separate sites: the only usable paths go over the internet.
        expect([r.a.path, r.b.path]).toEqual(['direct-internet', 'direct-internet']);
        expect(r.bothDirectAfterMs).not.toBeNull();
        expect(r.bothDirectAfterMs!).toBeLessThan(2000 + 2 * net.wanOneWayMs);
      } else {
        expect(r.bothDirectAfterMs).toBeNull();
        expect(r.reportsA).toEqual([expect.objectContaining({ attemptId: 'pair-1', result: 'failed' })]);
        expect(r.reportsB).toEqual([expect.objectContaining({ attemptId: 'pair-1', result: 'failed' })]);
        expect([r.a.phase, r.b.phase]).toEqual(['backoff', 'backoff']);
      }
    });
  });

  it('two devices behind one NAT end up on the LAN path, with or without hairpin', () => {
    for (const nat of [NATS.portRestricted!, { ...NATS.portRestricted!, hairpin: true }, NATS.symmetric!]) {
      const r = runPair(nat, nat, { sameSite: true });
      expect([r.a.path, r.b.path, r.a.endpoint, r.b.endpoint]).toEqual([
        'direct-lan',
        'direct-lan',
        '192.168.1.11:51820',
        '192.168.1.10:51820',
      ]);
      // Synced clocks: the first initiations cross on the LAN; the leader's retry 200 ms later wins.
      expect(r.bothDirectAfterMs!).toBeLessThan(300);
      // With a few ms of clock difference nothing crosses: direct within a LAN round trip and a poll.
      const skewed = runPair(nat, nat, { sameSite: true, skewA: 7, offsetErrorA: 7 });
      expect([skewed.a.path, skewed.b.path]).toEqual(['direct-lan', 'direct-lan']);
      expect(skewed.bothDirectAfterMs!).toBeLessThan(50);
    }
  });

  it('converges when both sides start in exact lockstep (crossing initiations) and reports times', () => {
    const r = runPair(NATS.portRestricted!, NATS.portRestricted!, {
      ctrlLatencyA: 20,
      ctrlLatencyB: 20,
      wanOneWayMs: 40,
    });
    expect([r.a.path, r.b.path]).toEqual(['direct-internet', 'direct-internet']);
    // Nothing crosses: the follower's initiation opens its NAT (the leader's drops it), the leader's,
    // held back by leaderDelayMs, gets through (plus a round trip for the handshake, one more for the
    // follower's confirmation, and a poll).
    const lead = DEFAULT_PATH_TIMINGS.leaderDelayMs;
    expect(r.bothDirectAfterMs!).toBeGreaterThanOrEqual(lead + 80);
    expect(r.bothDirectAfterMs!).toBeLessThan(lead + 120 + 25 + 5);
    // With starts 25 ms apart (more than the one-way delay) they do not cross: the follower's
    // initiation opens its NAT, the leader's (held back) is the first that gets through. (WireGuard
    // sends nothing for a set endpoint without keepalive or packets: only the leader's re-add.)
    const skewed = runPair(NATS.portRestricted!, NATS.portRestricted!, {
      wanOneWayMs: 20,
      skewB: 25,
      offsetErrorB: 25,
    });
    expect(skewed.bothDirectAfterMs!).toBeLessThan(lead + 60 + 25 + 5);
  });

  describe.each([
    { label: 'close, synced clocks', wanOneWayMs: 15 },
    {
      label: 'far, skewed clocks',
      wanOneWayMs: 150,
      skewA: 4000,
      skewB: -2500,
      offsetErrorA: 12,
      offsetErrorB: -9,
    },
  ])('with a relay ($label)', (net) => {
    it('a symmetric pair converges on the relay, keeps it through direct retries, and retries on a network change', () => {
      const networkChange = 31_000;
      const r = runPair(NATS.symmetric!, NATS.symmetric!, {
        ...net,
        relayAtMs: 2000,
        networkChangesA: [networkChange],
        runMs: 40_000,
      });
      const why = describeResult(r);
      expect({ paths: [r.a.path, r.b.path], why }).toEqual({ paths: ['relay', 'relay'], why });
      expect([r.a.relayName, r.b.relayName, r.a.endpoint, r.b.endpoint]).toEqual([
        'sim-relay',
        'sim-relay',
        SIM_RELAY,
        SIM_RELAY,
      ]);
      // A handshake through the relay takes 1.5 of its round trips (4 one-way hops each); when the
      // leader's retries cross the follower's on a long path it takes a few more.
      const relayRtt = 4 * net.wanOneWayMs;
      expect(r.bothRelayAfterMs).not.toBeNull();
      expect(r.bothRelayAfterMs!).toBeLessThan(4 * relayRtt + 200);
      expect(r.relayed).toBeGreaterThan(0);
      // On the working relay neither side starts direct retries of its own (the broker punches when
      // direct can work; for two symmetric NATs it cannot): no self-made attempts before the change.
      for (const [reports, timed] of [
        [r.reportsB, r.timedReportsB],
        [r.reportsA, r.timedReportsA],
      ] as const) {
        expect(reports[0]).toMatchObject({ attemptId: 'pair-1', result: 'failed' });
        expect(reports.filter((x) => x.result === 'direct')).toEqual([]);
        expect(timed.filter((x) => x.at < networkChange && x.attemptId.startsWith('local:'))).toEqual([]);
        expect(reports.at(-1)).toMatchObject({ result: 'relay', endpoint: SIM_RELAY, kind: 'relay' });
      }
      // A's network change: a direct attempt at once (not waiting out the backoff), then the relay again.
      const after = r.timedReportsA
        .filter((x) => x.at >= networkChange)
        .map((x) => [x.result, x.at - networkChange]);
      expect(after[0]).toEqual(['failed', expect.any(Number)]);
      expect(after[0]![1]).toBeLessThanOrEqual(600 + 300 + 1);
      expect(after[1]![0]).toBe('relay');
    });
  });

  it('a relay given while a punch waits to start is kept for its failure: the pair goes direct without it', () => {
    const r = runPair(NATS.portRestricted!, NATS.portRestricted!, { relayAtMs: 0, runMs: 4000 });
    expect([r.a.path, r.b.path]).toEqual(['direct-internet', 'direct-internet']);
    // No detour: moving to the relay just before the punch sent the peer a relay handshake, which a
    // peer already direct took for giving up on direct (the lab's NAT matrix saw the sides disagree).
    expect(r.reportsA.map((x) => x.result)).toEqual(['direct']);
    expect(r.reportsB.map((x) => x.result)).toEqual(['direct']);
  });
});

describe('paths on demand over a simulated NAT pair', () => {
  const demandAtMs = 1000;

  it.each(pairs.map(([a, b]) => ({ a, b, name: `${a.name} x ${b.name}` })))(
    'dormant until A has a packet for B, then wanted once and direct: $name',
    ({ a, b }) => {
      const r = runPair(a, b, { demandAtMs, runMs: 4000 });
      // Nothing happened before the packet: no reports, no wants.
      expect(r.timedReportsA.filter((x) => x.at < demandAtMs)).toEqual([]);
      expect(r.timedReportsB.filter((x) => x.at < demandAtMs)).toEqual([]);
      // Noticed at the next dormant poll (≤ 250 ms), asked for once; B never wanted anything.
      expect(r.wantsA[0]! - demandAtMs).toBeLessThanOrEqual(DEFAULT_PATH_TIMINGS.dormantPollMs);
      expect(r.wantsB).toEqual([]);
      if (expectedDirect(a, b)) {
        expect({ paths: [r.a.path, r.b.path], why: describeResult(r) }).toEqual({
          paths: ['direct-internet', 'direct-internet'],
          why: expect.any(String),
        });
        expect(r.wantsA).toHaveLength(1);
        // A dormant poll, the broker's round trip and start, a punch round trip or two, a poll.
        expect(r.bothDirectAfterMs!).toBeLessThan(700);
        expect([r.keepaliveA, r.keepaliveB]).toEqual([true, true]);
      } else {
        // No path (the sim has no relay here): the want is repeated after 2 s while demand lasts.
        expect(r.bothDirectAfterMs).toBeNull();
        expect(r.wantsA.map((t) => t - r.wantsA[0]!)).toEqual([0, DEFAULT_PATH_TIMINGS.wantInitialMs]);
      }
    },
  );

  it('a direct pair with no traffic but keepalives goes dormant on both sides: keepalive off, no reports', () => {
    const idle = DEFAULT_PATH_TIMINGS.idleAfterMs;
    const r = runPair(NATS.portRestricted!, NATS.portRestricted!, {
      demandAtMs,
      runMs: demandAtMs + idle + 12_000,
    });
    expect([r.a.phase, r.b.phase]).toEqual(['dormant', 'dormant']);
    expect([r.a.path, r.b.path]).toEqual(['none', 'none']);
    expect([r.keepaliveA, r.keepaliveB]).toEqual([false, false]);
    // Only the direct reports: going dormant tells the broker nothing (it forgot the direct pair).
    expect(r.reportsA.map((x) => x.result)).toEqual(['direct']);
    expect(r.reportsB.map((x) => x.result)).toEqual(['direct']);
    expect(r.wantsA).toHaveLength(1);
  });
});
