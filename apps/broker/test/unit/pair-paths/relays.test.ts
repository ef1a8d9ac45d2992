import type { Candidate, MappingType } from '@trellis/proto';
import type { PairDevice } from '../../../src/pair-paths/pair-types';
import type { RelayRttTable } from '../../../src/pair-paths/relay-choice';
import { FakeRelay, TCP_INFO } from '../../support/fake-relay-directory';
import { ACCOUNT, pairPaths, pathReport as report, settle } from '../../support/pair-paths-harness';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const KEY_A = `${'A'.repeat(42)}E=`;
const KEY_B = `${'B'.repeat(42)}A=`;

function cand(endpoint: string, kind: Candidate['kind']): Candidate {
  return { endpoint, kind, priority: kind === 'reflexive' ? 2000 : 1000 };
}

function device(id: string, candidates: Candidate[], mappingType: MappingType | null): PairDevice {
  return { id, publicKey: id === A ? KEY_A : KEY_B, candidates, mappingType };
}

const symA = device(A, [cand('192.0.2.11:1111', 'reflexive')], 'endpoint-dependent');
const symB = device(B, [cand('198.51.100.12:2222', 'reflexive')], 'endpoint-dependent');
const eimA = device(A, [cand('192.0.2.11:51820', 'reflexive')], 'endpoint-independent');
const edmB = device(B, [cand('198.51.100.12:40000', 'reflexive')], 'endpoint-dependent');
/** Seen only on its control connection's address: its reflectors never got UDP from it. */
const noUdpB = device(B, [cand('198.51.100.12:51820', 'observed')], null);

function scenario(opts: {
  devices: PairDevice[];
  reflectorsRun?: boolean;
  rtts?: Map<string, RelayRttTable>;
  seenSince?: (publicKey: string, since: number) => readonly string[] | null;
}) {
  const h = pairPaths(opts);
  return {
    ...h,
    bothOnline: () => h.bothOnline(A, B),
    relays: h.relaysTo,
    releases: h.releasesTo,
  };
}

describe('pair paths: relays', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('keeps nothing for reports and wants about peers that are not online in the account', async () => {
    const pp = pairPaths({ devices: [symA, symB] });
    pp.online(A);
    const before = { pairs: pp.driver.pairCount, timers: jest.getTimerCount() };
    // What a hostile device sends: reports and wants for random peer ids, of every kind.
    for (let i = 0; i < 2_000; i++) {
      const stranger = `cccccccc-0000-4000-8000-${String(i).padStart(12, '0')}`;
      for (const result of ['failed', 'direct', 'relay'] as const) {
        pp.report(A, report(result, stranger, `local:${i}`));
      }
      pp.want(A, stranger, i % 2 === 0);
    }
    // And about a peer of the account that is offline, and about itself.
    pp.report(A, report('failed', B));
    pp.want(A, B);
    pp.want(A, A);
    await settle();
    expect(pp.driver.pairCount).toBe(before.pairs);
    expect(jest.getTimerCount()).toBe(before.timers);
    expect(pp.sent).toEqual([]);
    expect(pp.punches).toEqual([]);
  });

  it('relays two symmetric NATs as soon as a side wants a path, both sides pointed at one allocation', async () => {
    const s = scenario({ devices: [symA, symB] });
    const relay = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(A);
    await jest.advanceTimersByTimeAsync(5_000);
    s.want(A, B); // B is not online: nothing to do
    s.online(B);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(s.sent).toEqual([]); // nobody wants the pair: no state, no relay
    s.want(B, A);
    await settle();
    const [toA] = s.relays(A);
    const [toB] = s.relays(B);
    expect(toA).toEqual({
      type: 'relay',
      peerId: B,
      peerPublicKey: KEY_B,
      allocationId: toA!.allocationId,
      relayId: relay.id,
      relayName: 'r1',
      endpoint: '203.0.113.1:40000',
    });
    expect(toB).toMatchObject({ peerId: A, peerPublicKey: KEY_A, endpoint: '203.0.113.1:40000' });
    expect(toB!.allocationId).toBe(toA!.allocationId);
    expect(s.directory.held.get(toA!.allocationId)?.sides.map((x) => x.publicKey)).toEqual([KEY_A, KEY_B]);
    // Nothing more happens while the relay serves the pair.
    await jest.advanceTimersByTimeAsync(600_000);
    expect(s.sent).toHaveLength(2);
  });

  it('a side without UDP is relayed after the wait, over TCP; the other side over UDP', async () => {
    const s = scenario({ devices: [eimA, noUdpB], reflectorsRun: true });
    s.directory.add(new FakeRelay('r1', '2001:db8::1', null, TCP_INFO));
    s.online(A);
    s.online(B);
    s.want(A, B);
    await jest.advanceTimersByTimeAsync(1_499);
    expect(s.sent).toEqual([]); // its reflexive address may still be on the way
    await jest.advanceTimersByTimeAsync(1);
    const [toA] = s.relays(A);
    const [toB] = s.relays(B);
    expect(toB).toMatchObject({ peerId: A, endpoint: '[2001:db8::1]:40000', tcp: TCP_INFO });
    expect(toA).toMatchObject({ peerId: B, endpoint: '[2001:db8::1]:40000' });
    expect(toA).not.toHaveProperty('tcp');
  });

  it('a side whose netmap still has an old reflexive address but that no reflector saw since it came online is UDP-blocked', async () => {
    const staleB = device(B, [cand('198.51.100.12:40000', 'reflexive')], 'endpoint-independent');
    const seen = new Map<string, number>([[KEY_A, 1_000_000]]); // A's reflector saw it at once
    const s = scenario({
      devices: [eimA, staleB],
      reflectorsRun: true,
      seenSince: (key, since) => ((seen.get(key) ?? 0) >= since ? ['x'] : null),
    });
    s.directory.add(new FakeRelay('r1', '192.0.2.50', null, TCP_INFO));
    s.online(A);
    s.online(B);
    s.want(A, B);
    s.observed(A);
    s.observed(B);
    await jest.advanceTimersByTimeAsync(1_500);
    expect(s.relays(B)[0]).toMatchObject({ peerId: A, tcp: TCP_INFO });
    expect(s.relays(A)[0]).not.toHaveProperty('tcp');
  });

  it('a side whose reflexive address arrives within the wait is not relayed', async () => {
    const s = scenario({ devices: [eimA, noUdpB], reflectorsRun: true });
    s.directory.add(new FakeRelay('r1', '203.0.113.1', null, TCP_INFO));
    s.online(A);
    s.online(B);
    s.want(A, B);
    await jest.advanceTimersByTimeAsync(900);
    s.devices.set(B, { ...edmB, mappingType: 'endpoint-independent' });
    s.changed(B);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(s.sent).toEqual([]);
  });

  it('the peer of a UDP-blocked device gets UDP while its own UDP may be on the way; TCP only after the wait, and UDP again once seen', async () => {
    const seen = new Map<string, number>();
    const s = scenario({
      devices: [eimA, noUdpB],
      reflectorsRun: true,
      seenSince: (key, since) => ((seen.get(key) ?? -1) >= since ? ['x'] : null),
    });
    s.directory.add(new FakeRelay('r1', '192.0.2.50', null, TCP_INFO));
    s.online(B);
    await jest.advanceTimersByTimeAsync(30_000);
    s.online(A);
    s.want(A, B); // nothing of A seen yet: it just came online (seen in the lab under load)
    await settle();
    expect(s.relays(A)).toHaveLength(1);
    expect(s.relays(A)[0]).not.toHaveProperty('tcp');
    expect(s.relays(B)[0]).toMatchObject({ peerId: A, tcp: TCP_INFO });
    // Still nothing from A at the end of the wait: its network blocks UDP too.
    await jest.advanceTimersByTimeAsync(1_500);
    expect(s.relays(A)).toHaveLength(2);
    expect(s.relays(A)[1]).toMatchObject({ allocationId: s.relays(A)[0]!.allocationId, tcp: TCP_INFO });
    // Its UDP gets out after all: back to the relay's UDP port (once; repeats change nothing).
    seen.set(KEY_A, Date.now());
    s.observed(A);
    s.observed(A);
    expect(s.relays(A)).toHaveLength(3);
    expect(s.relays(A)[2]).not.toHaveProperty('tcp');
    expect(s.relays(B)).toHaveLength(1);
  });

  it('a UDP-blocked side back online keeps the TCP fallback during its UDP wait (broker restart, quick reconnect)', async () => {
    // Seen in the lab: after a broker restart the agents' `want-path relayed` arrived while the
    // UDP-blocked side's wait ran; it was told the relay over UDP, dropped its working TCP link and
    // lost 7 pings until the wait ended and TCP came again.
    const seen = new Map<string, number>();
    const s = scenario({
      devices: [eimA, noUdpB],
      reflectorsRun: true,
      seenSince: (key, since) => ((seen.get(key) ?? -1) >= since ? ['x'] : null),
    });
    const r1 = s.directory.add(new FakeRelay('r1', '192.0.2.50', null, TCP_INFO));
    const held = s.directory.adopt(r1, ACCOUNT, [KEY_A, KEY_B]);
    s.online(B);
    await jest.advanceTimersByTimeAsync(500);
    s.online(A);
    seen.set(KEY_A, Date.now());
    s.observed(A);
    s.want(A, B, true);
    await settle();
    expect(s.relays(B)).toEqual([
      expect.objectContaining({ allocationId: held.allocationId, tcp: TCP_INFO }),
    ]);
    expect(s.relays(A)[0]).not.toHaveProperty('tcp');
    // The wait ends with nothing seen from B: it is on the right transport already.
    await jest.advanceTimersByTimeAsync(1_500);
    expect(s.relays(B)).toHaveLength(1);
    // A quick reconnect is told the relay again: over TCP from the start too.
    s.offline(B);
    await jest.advanceTimersByTimeAsync(5_000);
    s.online(B);
    await settle();
    expect(s.relays(B)).toHaveLength(2);
    expect(s.relays(B)[1]).toMatchObject({ allocationId: held.allocationId, tcp: TCP_INFO });
    // Its UDP gets out after all (a new network): back to the relay's UDP port.
    seen.set(KEY_B, Date.now());
    s.observed(B);
    expect(s.relays(B)).toHaveLength(3);
    expect(s.relays(B)[2]).not.toHaveProperty('tcp');
    expect(s.relays(A)).toHaveLength(1);
  });

  it('a UDP-blocked device already online for long is relayed the moment its peer comes online', async () => {
    const s = scenario({ devices: [eimA, noUdpB], reflectorsRun: true });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(B);
    await jest.advanceTimersByTimeAsync(30_000);
    s.online(A);
    s.want(A, B);
    await settle();
    expect(s.relays(A)).toHaveLength(1);
    expect(s.relays(B)[0]).not.toHaveProperty('tcp'); // the relay offers no TCP fallback
  });

  it('relays after a failed punch while punching goes on with backoff', async () => {
    const s = scenario({ devices: [eimA, edmB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    const { punches } = s;
    s.online(A);
    s.online(B);
    s.want(A, B);
    await jest.advanceTimersByTimeAsync(100);
    expect(punches).toHaveLength(2);
    expect(s.sent).toEqual([]); // punchable: no relay before a failure
    const first = punches[0]!.msg.attemptId;
    s.report(A, report('failed', B, first));
    s.report(B, report('failed', A, first));
    await jest.advanceTimersByTimeAsync(100);
    expect(s.relays(A)).toHaveLength(1);
    expect(s.relays(B)).toHaveLength(1);
    expect(punches).toHaveLength(4); // the retry goes on
    s.report(A, report('relay', B));
    s.report(A, report('failed', B, punches[2]!.msg.attemptId));
    await jest.advanceTimersByTimeAsync(4_999);
    expect(punches).toHaveLength(4);
    await jest.advanceTimersByTimeAsync(1);
    expect(punches).toHaveLength(6); // backoff, still direct attempts
    expect(s.relays(A)).toHaveLength(1); // the same allocation all along
  });

  /** A punchable pair whose first punch failed on both sides: relayed, the retry in flight. */
  const firstPunchFailed = async () => {
    const s = scenario({ devices: [eimA, edmB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    const { punches } = s;
    s.online(A);
    s.online(B);
    s.want(A, B);
    await jest.advanceTimersByTimeAsync(100);
    const first = punches[0]!.msg.attemptId;
    s.report(A, report('failed', B, first));
    s.report(B, report('failed', A, first));
    await jest.advanceTimersByTimeAsync(100);
    return { s, punches };
  };

  it('a want while a punch is in flight punches nothing more; on an active relay it re-sends the relay to both sides', async () => {
    const { s, punches } = await firstPunchFailed();
    expect(punches).toHaveLength(4); // the retry is in flight
    const allocationId = s.relays(A)[0]!.allocationId;
    // The symmetric side wants again while both try the retry: no punch restarts their attempt
    // (which would take a side off the relay), and both are told the relay again.
    s.want(B, A);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(punches).toHaveLength(4);
    expect(s.relays(A).map((m) => m.allocationId)).toEqual([allocationId, allocationId]);
    expect(s.relays(B).map((m) => m.allocationId)).toEqual([allocationId, allocationId]);
    // Once the punch's deadline is over a want tries the candidates again.
    await jest.advanceTimersByTimeAsync(500);
    s.want(B, A);
    await jest.advanceTimersByTimeAsync(100);
    expect(punches).toHaveLength(6);
    expect(s.directory.asked).toEqual(['r1']); // one allocation all along
  });

  it('a relayed want for a pair on its relay re-sends the relay and punches nothing, however late', async () => {
    const { s, punches } = await firstPunchFailed();
    const retry = punches.at(-1)!.msg.attemptId;
    s.report(A, report('failed', B, retry));
    s.report(B, report('failed', A, retry));
    await jest.advanceTimersByTimeAsync(60_000);
    const punched = punches.length;
    const allocationId = s.relays(A)[0]!.allocationId;
    // Both agents are on the relay; an instance whose bus was away tells the owner so again.
    s.want(B, A, true);
    s.want(A, B, true);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(punches).toHaveLength(punched);
    expect(s.relays(B).at(-1)!.allocationId).toBe(allocationId);
    expect(s.relays(A).at(-1)!.allocationId).toBe(allocationId);
    // A plain want (traffic again after a quiet spell) still tries the candidates again.
    s.want(B, A);
    await jest.advanceTimersByTimeAsync(100);
    expect(punches.length).toBeGreaterThan(punched);
    expect(s.directory.asked).toEqual(['r1']);
  });

  it('a want for a relayed pair tells the dormant side the relay again (its NAT mapping to it may be gone)', async () => {
    const s = scenario({ devices: [symA, symB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(A);
    s.online(B);
    s.want(B, A);
    await settle();
    const allocationId = s.relays(A)[0]!.allocationId;
    await jest.advanceTimersByTimeAsync(600_000); // A's side of the path went dormant meanwhile
    s.want(B, A);
    await settle();
    expect(s.relays(A)).toHaveLength(2);
    expect(s.relays(A)[1]).toEqual(s.relays(A)[0]);
    expect(s.relays(B).map((m) => m.allocationId)).toEqual([allocationId, allocationId]);
    expect(s.punches).toEqual([]); // both symmetric: nothing to punch
    expect(s.directory.asked).toEqual(['r1']);
  });

  it('releases once both sides stayed direct for the grace, telling both agents', async () => {
    const s = scenario({ devices: [eimA, edmB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(A);
    s.online(B);
    s.want(A, B);
    s.report(A, report('failed', B));
    await settle();
    const allocationId = s.relays(A)[0]!.allocationId;
    s.report(A, report('direct', B));
    s.report(B, report('direct', A));
    await jest.advanceTimersByTimeAsync(6_000);
    s.report(B, report('relay', A)); // B fell back: the grace starts over
    s.report(B, report('direct', A));
    await jest.advanceTimersByTimeAsync(9_999);
    expect(s.releases(A)).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(s.releases(A)).toEqual([{ type: 'relay-release', peerId: B, allocationId }]);
    expect(s.releases(B)).toEqual([{ type: 'relay-release', peerId: A, allocationId }]);
    expect(s.directory.released).toEqual([allocationId]);
    // Still direct: candidate changes do not bring the relay back.
    s.changed(A);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(s.relays(A)).toHaveLength(1);
  });

  it('chooses the relay with the lowest RTT sum; relays a side has not measured come last, least loaded first', async () => {
    const rtts = new Map<string, RelayRttTable>();
    const s = scenario({ devices: [symA, symB], rtts });
    const far = s.directory.add(new FakeRelay('far', '203.0.113.1'));
    const near = s.directory.add(new FakeRelay('near', '203.0.113.2'));
    const halfKnown = s.directory.add(new FakeRelay('half', '203.0.113.3'));
    const idle = s.directory.add(new FakeRelay('idle', '203.0.113.4'));
    halfKnown.load = 1;
    far.refuses = true;
    near.refuses = true;
    rtts.set(A, { [far.id]: 5, [near.id]: 10, [halfKnown.id]: 1 });
    rtts.set(B, { [far.id]: 40, [near.id]: 12 });
    await s.bothOnline();
    expect(s.directory.asked).toEqual(['near', 'far', 'idle']);
    expect(s.relays(A)[0]!.relayName).toBe('idle');
    expect(idle.load).toBe(1);
  });

  it('uses the account’s private relay before shared ones, as the directory lists them', async () => {
    const s = scenario({
      devices: [symA, symB],
      rtts: new Map(),
    });
    const shared = s.directory.add(new FakeRelay('shared', '203.0.113.1'));
    s.directory.add(new FakeRelay('own', '203.0.113.9', ACCOUNT));
    await s.bothOnline();
    expect(s.directory.asked).toEqual(['own']);
    expect(s.relays(B)[0]!.endpoint).toBe('203.0.113.9:40000');
    expect(shared.load).toBe(0);
  });

  it('skips a relay whose public address is a host name: agents need an IP endpoint', async () => {
    const s = scenario({ devices: [symA, symB] });
    s.directory.add(new FakeRelay('named', 'relay.example.com'));
    s.directory.add(new FakeRelay('r2', '203.0.113.2')).load = 5;
    await s.bothOnline();
    expect(s.directory.asked).toEqual(['r2']);
    expect(s.relays(A)[0]!.endpoint).toBe('203.0.113.2:40000');
  });

  it('tries the next relay when one refuses, and retries later when none could allocate', async () => {
    const s = scenario({ devices: [symA, symB] });
    const r1 = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    const r2 = s.directory.add(new FakeRelay('r2', '203.0.113.2'));
    r1.refuses = true;
    r2.refuses = true;
    await s.bothOnline();
    expect(s.directory.asked).toEqual(['r1', 'r2']);
    expect(s.sent).toEqual([]);
    r2.refuses = false;
    await jest.advanceTimersByTimeAsync(9_999);
    expect(s.sent).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(s.directory.asked).toEqual(['r1', 'r2', 'r1', 'r2']);
    expect(s.relays(A)[0]!.relayName).toBe('r2');
  });

  it('a relay coming up serves pairs that had none', async () => {
    const s = scenario({ devices: [symA, symB] });
    await s.bothOnline();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(s.sent).toEqual([]);
    expect(s.directory.asked).toEqual([]); // nothing to ask until a relay comes
    await s.relayComesUp(new FakeRelay('late', '203.0.113.7'));
    expect(s.relays(A)[0]!.relayName).toBe('late');
  });

  it('moves pairs off a relay that went away for good, with new relay messages', async () => {
    const s = scenario({ devices: [symA, symB] });
    const r1 = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.directory.add(new FakeRelay('r2', '203.0.113.2')).load = 1;
    await s.bothOnline();
    const before = s.relays(A)[0]!;
    expect(before.relayName).toBe('r1');
    await s.relayGone(r1);
    const after = s.relays(A)[1]!;
    expect(after).toMatchObject({ relayName: 'r2', peerId: B, endpoint: '203.0.113.2:40001' });
    expect(after.allocationId).not.toBe(before.allocationId);
    expect(s.relays(B)[1]!.allocationId).toBe(after.allocationId);
    expect(s.releases(A)).toEqual([]); // the new message replaces the old allocation
    expect(s.directory.released).toEqual([]);
  });

  it('tells both agents to stop using a lost relay when no other can take the pair', async () => {
    const s = scenario({ devices: [symA, symB] });
    const r1 = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    await s.bothOnline();
    const allocationId = s.relays(A)[0]!.allocationId;
    await s.relayGone(r1);
    expect(s.releases(A)).toEqual([{ type: 'relay-release', peerId: B, allocationId }]);
    expect(s.releases(B)).toHaveLength(1);
    await s.relayComesUp(new FakeRelay('r3', '203.0.113.3'));
    expect(s.relays(A)[1]!.relayName).toBe('r3');
  });

  it('keeps the relay over a quick reconnect (message sent again), releases it after the offline grace', async () => {
    const s = scenario({ devices: [symA, symB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    await s.bothOnline();
    const first = s.relays(A)[0]!;
    s.offline(A);
    await jest.advanceTimersByTimeAsync(5_000);
    s.online(A);
    await settle();
    expect(s.relays(A)).toEqual([first, first]);
    expect(s.relays(B)).toHaveLength(1);
    expect(s.directory.asked).toHaveLength(1);

    s.offline(A);
    await jest.advanceTimersByTimeAsync(14_999);
    expect(s.releases(B)).toEqual([]);
    await jest.advanceTimersByTimeAsync(1);
    expect(s.releases(B)).toEqual([{ type: 'relay-release', peerId: A, allocationId: first.allocationId }]);
    expect(s.directory.released).toEqual([first.allocationId]);
    // Back later and wanted: a new allocation.
    s.online(A);
    s.want(A, B);
    await settle();
    expect(s.relays(A)[2]!.allocationId).not.toBe(first.allocationId);
  });

  it('releases at once when a device is removed, and on expiry tells both agents', async () => {
    const s = scenario({ devices: [symA, symB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    await s.bothOnline();
    const first = s.relays(A)[0]!.allocationId;
    s.directory.expire(first);
    expect(s.driver.expired(first)).toBe(true);
    expect(s.releases(A)).toEqual([{ type: 'relay-release', peerId: B, allocationId: first }]);
    expect(s.releases(B)).toEqual([{ type: 'relay-release', peerId: A, allocationId: first }]);
    expect(s.directory.released).toEqual([]); // the relay closed it already
    expect(s.driver.expired(first)).toBe(false);

    s.online(B); // a reconnect decides afresh
    await settle();
    const second = s.relays(A)[1]!.allocationId;
    s.removed(B);
    expect(s.releases(A)[1]).toEqual({ type: 'relay-release', peerId: B, allocationId: second });
    expect(s.directory.released).toEqual([second]);
  });

  it('reuses the allocation its relay reported after a broker restart: the agents keep relay and port', async () => {
    const s = scenario({ devices: [symA, symB] });
    const r1 = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    const r2 = s.directory.add(new FakeRelay('r2', '203.0.113.2'));
    r2.load = 5; // ranked last: only the adoption can put the pair there
    const other = s.directory.adopt(r1, ACCOUNT, [KEY_A, `${'C'.repeat(42)}A=`]);
    const held = s.directory.adopt(r2, ACCOUNT, [KEY_B, KEY_A]);
    await s.bothOnline();
    expect(s.directory.asked).toEqual([]);
    for (const [to, peerId, peerPublicKey] of [
      [A, B, KEY_B],
      [B, A, KEY_A],
    ] as const)
      expect(s.relays(to)).toEqual([
        {
          type: 'relay',
          peerId,
          peerPublicKey,
          allocationId: held.allocationId,
          relayId: r2.id,
          relayName: 'r2',
          endpoint: `203.0.113.2:${held.port}`,
        },
      ]);
    // The other pair's adoption is left alone; the pair's is released like any allocation once the
    // pair no longer needs it.
    expect(s.directory.adopted.map((a) => a.record.allocationId)).toEqual([other.allocationId]);
    s.removed(B);
    expect(s.releases(A)).toEqual([{ type: 'relay-release', peerId: B, allocationId: held.allocationId }]);
    expect(s.directory.released).toEqual([held.allocationId]);
  });

  it('an agent on a relay re-announces it after a broker restart: a punchable pair keeps its adopted allocation', async () => {
    const s = scenario({ devices: [eimA, edmB] });
    const r1 = s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    const held = s.directory.adopt(r1, ACCOUNT, [KEY_A, KEY_B]);
    s.online(A);
    s.online(B);
    s.want(B, A, true);
    await settle();
    expect(s.directory.asked).toEqual([]);
    expect(s.relays(A)[0]).toMatchObject({
      allocationId: held.allocationId,
      endpoint: `203.0.113.1:${held.port}`,
    });
    expect(s.relays(B)[0]!.allocationId).toBe(held.allocationId);
    expect(s.punches).toHaveLength(0); // settle time not over: the punch comes, the relay stays
  });

  it('frees an allocation that arrives after the pair stopped needing it', async () => {
    const s = scenario({ devices: [symA, symB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(A);
    s.online(B);
    s.want(A, B);
    s.removed(B); // while the relays are asked
    await settle();
    expect(s.sent).toEqual([]);
    expect(s.directory.asked).toEqual(['r1']);
    expect(s.directory.released).toHaveLength(1);
    expect(s.directory.held.size).toBe(0);
    // A driver disposed while it waits for adoptions asks no relay at all.
    const t = scenario({ devices: [symA, symB] });
    t.directory.add(new FakeRelay('r1', '203.0.113.1'));
    t.online(A);
    t.online(B);
    t.want(A, B);
    t.driver.dispose();
    await settle();
    expect(t.directory.asked).toEqual([]);
    expect(t.directory.held.size).toBe(0);
  });

  it('ignores reports naming unknown devices or the reporter itself', async () => {
    const s = scenario({ devices: [eimA, edmB] });
    s.directory.add(new FakeRelay('r1', '203.0.113.1'));
    s.online(A);
    s.online(B);
    s.want(A, B);
    s.report(A, report('failed', 'cccccccc-0000-4000-8000-000000000003'));
    s.report(A, report('failed', A));
    await settle();
    expect(s.sent).toEqual([]);
  });
});
