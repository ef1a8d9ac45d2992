import { type Candidate, PunchMessage } from '@trellis/proto';
import { PEER_ID, PEER_KEY, punchMessage, Scenario, T0 } from './scenario';

const LAN = '192.168.1.7:51820';
const REFLEXIVE = '203.0.113.7:41000';

describe('PeerPathMachine via PathManager', () => {
  it('the punch fixture is a valid wire message', () => {
    expect(PunchMessage.parse(punchMessage())).toEqual(punchMessage());
  });

  it('waits for the start time, then succeeds on the first candidate and reports direct', () => {
    const s = new Scenario();
    s.responder = (ep) => (ep === LAN ? 3 : null);
    // The broker's clock runs 2 s ahead of ours: its startAt T0+2500 is our T0+500.
    const effects = s.apply(s.mgr.punch(punchMessage({ startAt: T0 + 2500 }), 2000, s.now));
    expect(effects).toEqual([{ type: 'schedule-tick', at: T0 + 500 }]);
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('scheduled');

    s.runUntil(T0 + 499);
    expect(s.readdsSince(T0)).toEqual([]);
    s.runUntil(T0 + 600);
    // LAN first although the broker ranked the reflexive candidate's priority lower only by kind.
    expect(s.readdsSince(T0)).toEqual([{ at: T0 + 500, endpoint: LAN }]);
    expect(s.reports).toEqual([
      {
        type: 'path',
        peerId: PEER_ID,
        attemptId: 'p1',
        result: 'direct',
        endpoint: LAN,
        kind: 'lan',
        elapsedMs: 25,
      },
    ]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-lan', endpoint: LAN, since: T0 + 525 });
  });

  it('as the leader of a punch points at the candidate at the start but initiates leaderDelayMs later', () => {
    const s = new Scenario({ leaderDelayMs: 50 });
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.runUntil(T0 + 400);
    // Every candidate: pointed at when it starts, first initiation 50 ms later, retries from there.
    expect(s.log.filter((l) => l.effect.type === 'set-endpoint').map((l) => l.at - T0)).toEqual([0, 300]);
    expect(s.readdsSince(T0)).toEqual([
      { at: T0 + 50, endpoint: LAN },
      { at: T0 + 250, endpoint: LAN },
      { at: T0 + 350, endpoint: REFLEXIVE },
    ]);
    // The follower's initiation completed the handshake before ours went out: no initiation at all.
    const early = new Scenario({ leaderDelayMs: 50 });
    early.apply(early.mgr.punch(punchMessage({ startAt: T0 }), 0, early.now));
    early.runUntil(T0 + 10);
    early.handshake(PEER_KEY, LAN);
    early.runUntil(T0 + 200);
    expect(early.readdsSince(T0)).toEqual([]);
    expect(early.reports).toEqual([expect.objectContaining({ result: 'direct', endpoint: LAN })]);
  });

  it('leads or follows as the punch says, whatever the key order', () => {
    const follower = `C${'A'.repeat(42)}=`;
    const s = new Scenario({ leaderDelayMs: 50 }, follower);
    s.apply(s.mgr.punch(punchMessage({ startAt: T0, leader: true }), 0, s.now));
    s.runUntil(T0 + 280);
    expect(s.readdsSince(T0)).toEqual([
      { at: T0 + 50, endpoint: LAN },
      { at: T0 + 250, endpoint: LAN },
    ]);
    const leader = new Scenario({ leaderDelayMs: 50 });
    leader.apply(leader.mgr.punch(punchMessage({ startAt: T0, leader: false }), 0, leader.now));
    leader.runUntil(T0 + 280);
    expect(leader.readdsSince(T0)).toEqual([{ at: T0, endpoint: LAN }]);
  });

  it('moves to the reflexive candidate when the LAN one stays silent, re-adding on a growing schedule', () => {
    const s = new Scenario();
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.responder = (ep, at) => (ep === REFLEXIVE && at >= T0 + 500 ? 40 : null); // lost until +500
    s.runUntil(T0 + 3000);
    // Leader (our key sorts first): re-adds 200 ms after a candidate's start, then 300 (x1.5), 450...
    // A LAN candidate gets at most 300 ms; the reflexive one the punch's 1000 ms.
    expect(s.readdsSince(T0)).toEqual([
      { at: T0, endpoint: LAN },
      { at: T0 + 200, endpoint: LAN },
      { at: T0 + 300, endpoint: REFLEXIVE },
      { at: T0 + 500, endpoint: REFLEXIVE },
    ]);
    // Handshake at +540, seen at the next 25 ms poll.
    expect(s.reports).toEqual([
      expect.objectContaining({ result: 'direct', endpoint: REFLEXIVE, kind: 'reflexive', elapsedMs: 550 }),
    ]);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
  });

  it('as the follower sends once per punched candidate, and retries half an interval late on its own attempts', () => {
    const follower = `C${'A'.repeat(42)}=`;
    const s = new Scenario({}, follower);
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.runUntil(T0 + 1300);
    expect(s.readdsSince(T0)).toEqual([
      { at: T0, endpoint: LAN },
      { at: T0 + 300, endpoint: REFLEXIVE },
    ]);
    // Uncoordinated attempts (here: backoff retry 5 s after the failure, for packets WireGuard still
    // has for the peer): leader 0/200/500/950, follower 0/300/600.
    s.traffic(PEER_KEY);
    s.runUntil(T0 + 1300 + 5000 + 1300);
    expect(s.readdsSince(T0 + 1301).map((r) => [r.at - T0 - 6300, r.endpoint])).toEqual([
      [0, LAN],
      [300, REFLEXIVE],
      [600, REFLEXIVE],
      [900, REFLEXIVE],
    ]);
    const leader = new Scenario();
    leader.apply(
      leader.mgr.setPeers(
        [
          {
            peerId: PEER_ID,
            publicKey: PEER_KEY,
            candidates: [{ endpoint: REFLEXIVE, kind: 'observed', priority: 1 }],
          },
        ],
        leader.now,
      ),
    );
    leader.demand(); // a new peer is dormant until WireGuard has packets for it
    const start = leader.readdsSince(T0)[0]!.at;
    leader.runUntil(start + 1000);
    expect(leader.readdsSince(T0).map((r) => r.at - start)).toEqual([0, 200, 500, 950]);
  });

  it('reports failure after the last candidate, parks on the public one, backs off, retries at once on a network change', () => {
    const s = new Scenario();
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.runUntil(T0 + 2000);
    expect(s.reports).toEqual([
      { type: 'path', peerId: PEER_ID, attemptId: 'p1', result: 'failed', elapsedMs: 1300 },
    ]);
    // Last tried was the reflexive candidate, so WireGuard stays there; only its keepalive goes off.
    expect(s.log.filter((l) => l.effect.type === 'set-endpoint').map((l) => [l.at - T0, l.effect])).toEqual([
      [
        1300,
        { type: 'set-endpoint', peerId: PEER_ID, publicKey: PEER_KEY, endpoint: REFLEXIVE, keepalive: false },
      ],
    ]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'none', phase: 'backoff', failures: 1 });

    // Backoff: 5 s, then 10 s (each local attempt takes 300 ms on LAN + 1 s on the reflexive one);
    // a retry is for packets WireGuard still has for the peer.
    s.traffic(PEER_KEY);
    s.runUntil(T0 + 1300 + 4999);
    expect(s.readdsSince(T0 + 1301)).toEqual([]);
    s.runUntil(T0 + 1300 + 5000 + 2000);
    expect(s.readdsSince(T0 + 1301)[0]).toEqual({ at: T0 + 6300, endpoint: LAN });
    expect(s.reports.map((r) => [r.attemptId, r.result])).toEqual([
      ['p1', 'failed'],
      ['local:1', 'failed'],
    ]);
    expect(s.mgr.statusOf(PEER_ID)?.failures).toBe(2);
    const failedAt = T0 + 6300 + 1300;
    s.runUntil(failedAt + 4000);
    expect(s.readdsSince(failedAt + 1)).toEqual([]); // second backoff is 10 s

    // Our address changed: do not wait out the backoff.
    s.responder = (ep) => (ep === REFLEXIVE ? 10 : null);
    const effects = s.apply(s.mgr.networkChanged(s.now));
    expect(effects[0]).toEqual({ type: 'readd-peer', peerId: PEER_ID, publicKey: PEER_KEY, endpoint: LAN });
    s.runUntil(s.now + 2000);
    expect(s.reports.at(-1)).toMatchObject({ attemptId: 'local:2', result: 'direct', endpoint: REFLEXIVE });
    expect(s.mgr.statusOf(PEER_ID)?.failures).toBe(0);
  });

  it('parks WireGuard on the best public candidate after every candidate failed', () => {
    const s = new Scenario();
    const observed = '198.51.100.3:6000';
    const candidates = [
      { endpoint: observed, kind: 'observed' as const, priority: 50 },
      { endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 100 },
      { endpoint: LAN, kind: 'lan' as const, priority: 10 },
    ];
    s.apply(s.mgr.punch(punchMessage({ startAt: T0, candidates }), 0, s.now));
    s.runUntil(T0 + 3000);
    expect(s.readdsSince(T0).map((r) => r.endpoint)).toEqual([
      LAN,
      LAN,
      ...Array(4).fill(REFLEXIVE),
      ...Array(4).fill(observed),
    ]);
    expect(s.log.filter((l) => l.effect.type === 'set-endpoint').map((l) => [l.at - T0, l.effect])).toEqual([
      [
        2300,
        { type: 'set-endpoint', peerId: PEER_ID, publicKey: PEER_KEY, endpoint: REFLEXIVE, keepalive: false },
      ],
    ]);
    expect(s.wg.get(PEER_KEY)?.endpoint).toBe(REFLEXIVE);
  });

  it('keeps a direct path in use while handshakes stay fresh and re-punches once they go stale', () => {
    const s = new Scenario();
    s.responder = (ep) => (ep === REFLEXIVE ? 30 : null);
    s.apply(
      s.mgr.punch(
        punchMessage({ startAt: T0, candidates: [{ endpoint: REFLEXIVE, kind: 'reflexive', priority: 1 }] }),
        0,
        s.now,
      ),
    );
    s.runUntil(T0 + 100);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    // The path carries traffic (every minute), and WireGuard re-handshakes every 2 minutes: still
    // direct after 10 minutes.
    for (let i = 1; i <= 10; i++) {
      s.traffic(PEER_KEY, 5_000, 5_000);
      s.runUntil(T0 + i * 60_000);
      if (i % 2 === 0) s.handshake(PEER_KEY, REFLEXIVE);
    }
    for (let i = 11; i <= 13; i++) {
      s.traffic(PEER_KEY, 5_000, 5_000);
      s.runUntil(Math.min(T0 + i * 60_000, T0 + 600_000 + 179_000));
    }
    expect(s.readdsSince(T0 + 1)).toEqual([]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', since: T0 + 50 });
    // No handshake for 3 minutes: the path is dead, still wanted (traffic), so the broker is asked
    // and we try again ourselves (and succeed).
    s.traffic(PEER_KEY, 5_000, 0);
    s.runUntil(T0 + 600_000 + 200_000);
    const readds = s.readdsSince(T0 + 1);
    expect(readds).toHaveLength(1);
    expect(readds[0]!.at).toBeGreaterThan(T0 + 600_000 + 180_000);
    expect(readds[0]!.at).toBeLessThanOrEqual(T0 + 600_000 + 180_000 + 10_000);
    expect(s.wants).toEqual([{ type: 'want-path', peerId: PEER_ID }]);
    expect(s.reports.at(-1)).toMatchObject({ attemptId: 'local:1', result: 'direct' });
  });

  it('ignores a punch it has already seen, while running and after', () => {
    const s = new Scenario();
    s.responder = (ep) => (ep === LAN ? 5 : null);
    s.apply(s.mgr.punch(punchMessage(), 0, s.now));
    expect(s.apply(s.mgr.punch(punchMessage(), 0, s.now))).toEqual([{ type: 'schedule-tick', at: T0 + 500 }]);
    s.runUntil(T0 + 1000);
    const again = s.apply(s.mgr.punch(punchMessage(), 0, s.now));
    expect(again.filter((e) => e.type !== 'schedule-tick')).toEqual([]);
    expect(s.readdsSince(T0)).toHaveLength(1);
    expect(s.reports).toHaveLength(1);
    // A new attempt id is obeyed even on a working path: the broker knows the other side needs it.
    const fresh = s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: T0 }), 0, s.now));
    expect(fresh[0]).toMatchObject({ type: 'readd-peer', endpoint: LAN });
  });

  it('forgets a peer removed mid-attempt: no further effects, no wake-ups', () => {
    const s = new Scenario();
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.runUntil(T0 + 400);
    expect(s.apply(s.mgr.removePeer(PEER_ID, s.now))).toEqual([]);
    expect(s.wakeAt).toBeNull();
    const before = s.log.length;
    s.runUntil(T0 + 60_000);
    expect(s.log).toHaveLength(before);
    expect(s.mgr.status()).toEqual([]);
    // Observations for the old key are ignored.
    expect(
      s.mgr.observe(
        [{ publicKey: PEER_KEY, lastHandshakeMs: s.now, endpoint: LAN, txBytes: 0, rxBytes: 0 }],
        s.now,
      ),
    ).toEqual([]);
  });

  it('starts on its own when WireGuard has packets for a peer the netmap brought, and re-tries at once when a dead peer roams', () => {
    const s = new Scenario();
    const peer = { peerId: PEER_ID, publicKey: PEER_KEY };
    const first = s.apply(
      s.mgr.setPeers(
        [{ ...peer, candidates: [{ endpoint: REFLEXIVE, kind: 'observed', priority: 1 }] }],
        s.now,
      ),
    );
    // Dormant: WireGuard parked at the candidate without keepalive until it has packets for the peer.
    expect(first[0]).toMatchObject({ type: 'set-endpoint', endpoint: REFLEXIVE, keepalive: false });
    expect(s.readdsSince(T0)).toEqual([]);
    s.demand();
    expect(s.readdsSince(T0)[0]).toMatchObject({ endpoint: REFLEXIVE });
    s.runUntil(T0 + 2000);
    expect(s.reports).toEqual([expect.objectContaining({ attemptId: 'local:1', result: 'failed' })]);
    // Same candidates again: nothing new to try, stay in backoff.
    expect(
      s.apply(
        s.mgr.setPeers(
          [{ ...peer, candidates: [{ endpoint: REFLEXIVE, kind: 'observed', priority: 1 }] }],
          s.now,
        ),
      ),
    ).toEqual([expect.objectContaining({ type: 'schedule-tick' })]);
    // The peer moved to another site: its new address is tried at once.
    const moved = '198.51.100.20:52000';
    s.responder = (ep) => (ep === moved ? 20 : null);
    const roam = s.apply(
      s.mgr.setPeers([{ ...peer, candidates: [{ endpoint: moved, kind: 'observed', priority: 1 }] }], s.now),
    );
    expect(roam[0]).toMatchObject({ type: 'readd-peer', endpoint: moved });
    s.runUntil(s.now + 1000);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', endpoint: moved });

    // While direct, the peer's WAN address changes again: its old host is gone, so do not wait 3
    // minutes. One look at WireGuard first (at once): it still points at the old address.
    const movedAgain = '192.0.2.99:40001';
    s.responder = (ep) => (ep === movedAgain ? 20 : null);
    const again = s.apply(
      s.mgr.setPeers(
        [{ ...peer, candidates: [{ endpoint: movedAgain, kind: 'observed', priority: 1 }] }],
        s.now,
      ),
    );
    expect(again).toEqual([{ type: 'schedule-tick', at: s.now }]);
    s.wake();
    expect(s.readdsSince(s.now)).toEqual([{ at: s.now, endpoint: movedAgain }]);
    // A new candidate next to the working one does not disturb the path.
    s.runUntil(s.now + 1000);
    const extra = s.apply(
      s.mgr.setPeers(
        [
          {
            ...peer,
            candidates: [
              { endpoint: movedAgain, kind: 'observed', priority: 2 },
              { endpoint: '10.0.0.9:51820', kind: 'lan', priority: 1 },
            ],
          },
        ],
        s.now,
      ),
    );
    expect(extra.filter((e) => e.type === 'readd-peer')).toEqual([]);
  });

  describe("a device moves onto its peer's own LAN (a router that does not hairpin)", () => {
    const peer = { peerId: PEER_ID, publicKey: PEER_KEY };
    const PEER_PUBLIC = '198.51.100.2:51820';
    const PEER_LAN = '10.2.0.10:51820';
    const OUR_OLD_PUBLIC = '203.0.113.9:51820';
    const OUR_NEW_LAN = '10.2.0.11:51820';

    /** A Scenario direct with the peer over the internet at `endpoint`, netmap listing `candidates`. */
    function directAt(endpoint: string, candidates: Candidate[]): Scenario {
      const s = new Scenario();
      s.responder = (ep) => (ep === endpoint ? 20 : null);
      s.apply(s.mgr.setPeers([{ ...peer, candidates }], s.now));
      s.demand(); // the host talks to the peer: the path is wanted
      s.runUntil(s.now + 1000);
      expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', endpoint });
      return s;
    }

    it("the mover tries the peer's LAN address first once it is on that link", () => {
      // Off its LAN, the agent left the peer's LAN candidate out (someone else's private network).
      const s = directAt(PEER_PUBLIC, [{ endpoint: PEER_PUBLIC, kind: 'reflexive', priority: 2000 }]);
      // On the peer's LAN: the public address no longer answers, the LAN one does at once.
      s.responder = (ep) => (ep === PEER_LAN ? 2 : null);
      const at = s.now;
      const onLink = [
        { endpoint: PEER_PUBLIC, kind: 'reflexive' as const, priority: 2000 },
        { endpoint: PEER_LAN, kind: 'lan' as const, priority: 4000 },
      ];
      s.apply(s.mgr.networkChanged(at, [{ ...peer, candidates: onLink }]));
      expect(s.readdsSince(at)[0]).toEqual({ at, endpoint: PEER_LAN });
      s.runUntil(at + 100);
      expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-lan', endpoint: PEER_LAN });
      expect(s.reports.at(-1)).toMatchObject({ result: 'direct', endpoint: PEER_LAN, kind: 'lan' });
      expect(s.readdsSince(at).map((r) => r.endpoint)).not.toContain(PEER_PUBLIC);
    });

    it('without new candidates a network change retries what the netmap gave before', () => {
      const s = directAt(PEER_PUBLIC, [{ endpoint: PEER_PUBLIC, kind: 'reflexive', priority: 2000 }]);
      const at = s.now;
      s.apply(s.mgr.networkChanged(at));
      expect(s.readdsSince(at)).toEqual([{ at, endpoint: PEER_PUBLIC }]);
    });

    it("the peer keeps the session the mover's handshake brought from its new LAN address", () => {
      const s = directAt(OUR_OLD_PUBLIC, [{ endpoint: OUR_OLD_PUBLIC, kind: 'reflexive', priority: 2000 }]);
      // The mover's handshake reaches us from its new LAN address; WireGuard follows it, but we have
      // not looked yet (direct paths are polled every 10 s).
      s.runUntil(s.now + 3000);
      s.handshake(PEER_KEY, OUR_NEW_LAN);
      // Then the broker's update: the mover's new reflexive address; its old one is gone, and the
      // new LAN address is not known yet (its control connection is still finding its way back).
      const at = s.now;
      const update = [{ endpoint: '198.51.100.2:50539', kind: 'reflexive' as const, priority: 2000 }];
      expect(s.apply(s.mgr.setPeers([{ ...peer, candidates: update }], at))).toEqual([
        { type: 'schedule-tick', at },
      ]);
      s.wake();
      expect(s.readdsSince(at)).toEqual([]);
      expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-lan', endpoint: OUR_NEW_LAN });
      // Further updates that still do not list that address do not tear the working session down.
      s.runUntil(s.now + 500);
      s.apply(
        s.mgr.setPeers(
          [
            {
              ...peer,
              candidates: [...update, { endpoint: '198.51.100.2:51820', kind: 'observed', priority: 1000 }],
            },
          ],
          s.now,
        ),
      );
      s.runUntil(s.now + 15_000);
      expect(s.readdsSince(at)).toEqual([]);
      expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-lan', endpoint: OUR_NEW_LAN });
    });
  });

  it('notices a direct path the peer opened on its own while backing off', () => {
    const s = new Scenario();
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
    s.runUntil(T0 + 2500);
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('backoff');
    s.handshake(PEER_KEY, '203.0.113.7:41999'); // WireGuard roamed to where the peer's packets came from
    // Seen at the next wake-up (the backoff's, at +6.3 s): handshakes are read before the retry runs.
    s.runUntil(T0 + 7000);
    expect(s.reports.at(-1)).toEqual({
      type: 'path',
      peerId: PEER_ID,
      attemptId: 'observed:1',
      result: 'direct',
      endpoint: '203.0.113.7:41999',
      kind: 'observed',
      elapsedMs: 0,
    });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', since: T0 + 6300 });
    expect(s.readdsSince(T0 + 2001)).toEqual([]); // the backoff retry was not needed
  });

  it('notices a peer that reached us although we have no candidates for it', () => {
    const s = new Scenario();
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    // Nothing to try and nothing wanted: dormant (no endpoint at all here: the Scenario has no sink).
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ phase: 'dormant', endpoint: null });
    s.runUntil(T0 + 3000);
    s.handshake(PEER_KEY, '198.51.100.4:7000');
    s.runUntil(T0 + 10_000);
    expect(s.reports).toEqual([
      expect.objectContaining({ attemptId: 'observed:1', result: 'direct', endpoint: '198.51.100.4:7000' }),
    ]);
    // An empty candidate list later says nothing about the working path.
    expect(
      s
        .apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now))
        .filter((e) => e.type !== 'schedule-tick'),
    ).toEqual([]);
  });

  it('re-adds toward the address the peer initiation came from (peer-reflexive) instead of a dead candidate', () => {
    const s = new Scenario();
    const prflx = '203.0.113.7:45555'; // the peer's symmetric NAT picked a new port for us
    s.responder = (ep) => (ep === prflx ? 30 : null);
    s.apply(
      s.mgr.punch(
        punchMessage({ startAt: T0, candidates: [{ endpoint: REFLEXIVE, kind: 'reflexive', priority: 1 }] }),
        0,
        s.now,
      ),
    );
    s.runUntil(T0 + 60);
    // The peer's initiation arrived; WireGuard answered and moved the endpoint (no handshake of ours yet).
    s.peer(PEER_KEY).endpoint = prflx;
    s.runUntil(T0 + 1000);
    expect(s.readdsSince(T0)).toEqual([
      { at: T0, endpoint: REFLEXIVE },
      { at: T0 + 200, endpoint: prflx },
    ]);
    expect(s.reports).toEqual([
      expect.objectContaining({ result: 'direct', endpoint: prflx, kind: 'observed' }),
    ]);
  });

  it('clamps a start time too far ahead (bad clock offset) and starts at once for one in the past', () => {
    const s = new Scenario();
    const late = s.apply(s.mgr.punch(punchMessage({ startAt: T0 - 5000 }), 0, s.now));
    expect(late[0]).toMatchObject({ type: 'readd-peer' });
    const s2 = new Scenario();
    expect(s2.apply(s2.mgr.punch(punchMessage({ startAt: T0 + 3_600_000 }), 0, s2.now))).toEqual([
      { type: 'schedule-tick', at: T0 + 10_000 },
    ]);
  });
});

describe('PathManager', () => {
  const OTHER_ID = '7a2d2c9f-4d2e-4c8b-8b66-3e1e9b2c3d4e';
  const OTHER_KEY = `D${'A'.repeat(42)}=`;

  it('schedules the earliest wake-up over all peers and drops peers that left the netmap', () => {
    const s = new Scenario();
    const effects = s.apply(
      s.mgr.setPeers(
        [
          { peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] },
          {
            peerId: OTHER_ID,
            publicKey: OTHER_KEY,
            candidates: [{ endpoint: REFLEXIVE, kind: 'observed', priority: 1 }],
          },
        ],
        s.now,
      ),
    );
    // Both dormant: only the peer with a candidate has somewhere to park; demand is polled every 250 ms.
    expect(effects).toEqual([
      {
        type: 'set-endpoint',
        peerId: OTHER_ID,
        publicKey: OTHER_KEY,
        endpoint: REFLEXIVE,
        keepalive: false,
      },
      { type: 'schedule-tick', at: T0 + 250 },
    ]);
    // Packets for the other peer: its attempt starts at +250 and polls every 25 ms.
    s.demand(OTHER_KEY);
    expect(s.readdsSince(T0)).toEqual([{ at: T0 + 250, endpoint: REFLEXIVE }]);
    expect(s.wakeAt).toBe(T0 + 325);
    // A punch starting sooner than that poll is the earliest wake-up.
    s.apply(s.mgr.punch(punchMessage({ startAt: T0 + 310 }), 0, s.now));
    expect(s.wakeAt).toBe(T0 + 310);
    expect(s.mgr.status().map((p) => [p.peerId, p.phase])).toEqual([
      [PEER_ID, 'scheduled'],
      [OTHER_ID, 'probing'],
    ]);
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    expect(s.mgr.status().map((p) => p.peerId)).toEqual([PEER_ID]);
  });

  it('starts over when a peer re-enrolled with a new key', () => {
    const s = new Scenario();
    s.responder = () => 5;
    const cands = [{ endpoint: REFLEXIVE, kind: 'observed' as const, priority: 1 }];
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: cands }], s.now));
    s.demand();
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    const effects = s.apply(
      s.mgr.setPeers([{ peerId: PEER_ID, publicKey: OTHER_KEY, candidates: cands }], s.now),
    );
    // A new peer: nothing of the old key's path, dormant until WireGuard has packets for it.
    expect(effects[0]).toEqual({
      type: 'set-endpoint',
      peerId: PEER_ID,
      publicKey: OTHER_KEY,
      endpoint: REFLEXIVE,
      keepalive: false,
    });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({
      publicKey: OTHER_KEY,
      path: 'none',
      phase: 'dormant',
      failures: 0,
    });
  });
});
