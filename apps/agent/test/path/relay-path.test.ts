import { PathReportMessage } from '@trellis/proto';
import type { PathTimings } from '../../src/path';
import {
  ALLOCATION_ID,
  PEER_ID,
  PEER_KEY,
  punchMessage,
  RELAY_ENDPOINT,
  relayPath,
  Scenario,
  T0,
} from './scenario';

const LAN = '192.168.1.7:51820';
const REFLEXIVE = '203.0.113.7:41000';
const RELAY_ID = `relay:${ALLOCATION_ID}`;
const FOLLOWER_KEY = `C${'A'.repeat(42)}=`;

const relayReport = (elapsedMs: number): PathReportMessage => ({
  type: 'path',
  peerId: PEER_ID,
  attemptId: RELAY_ID,
  result: 'relay',
  endpoint: RELAY_ENDPOINT,
  kind: 'relay',
  elapsedMs,
});

/** A peer whose punch at T0 failed (LAN and reflexive silent): in backoff from T0+1300. */
function failedPunch(selfKey?: string, timings: Partial<PathTimings> = {}): Scenario {
  const s = new Scenario(timings, selfKey);
  s.apply(s.mgr.punch(punchMessage({ startAt: T0 }), 0, s.now));
  s.runUntil(T0 + 1300);
  expect(s.reports.map((r) => r.result)).toEqual(['failed']);
  return s;
}

/** failedPunch, then the relay at T0+2000, which answers every re-add after 20 ms. */
function relayed(selfKey?: string, timings: Partial<PathTimings> = {}): Scenario {
  const s = failedPunch(selfKey, timings);
  s.runUntil(T0 + 2000);
  s.responder = (ep) => (ep === RELAY_ENDPOINT ? 20 : null);
  s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
  s.runUntil(T0 + 2100);
  expect(s.mgr.statusOf(PEER_ID)?.path).toBe('relay');
  return s;
}

/**
 * The host keeps using the path until `untilMs`: a data packet (`rxBytes` back) every `everyMs`,
 * so it is wanted (or in use) and never goes dormant for idleness.
 */
function busy(s: Scenario, untilMs: number, rxBytes = 0, everyMs = 1000, txBytes = 96): void {
  while (s.now < untilMs) {
    s.traffic(PEER_KEY, txBytes, rxBytes);
    s.runUntil(Math.min(untilMs, s.now + everyMs));
  }
}

describe('relay paths', () => {
  it('the report is a valid wire message', () => {
    expect(PathReportMessage.parse(relayReport(25))).toEqual(relayReport(25));
  });

  it('a punch leader leaving a relay whose handshake is still in flight initiates at once, not after its delay', () => {
    const s = failedPunch(undefined, { leaderDelayMs: 50 });
    s.runUntil(T0 + 2000);
    s.responder = (ep) => (ep === RELAY_ENDPOINT ? 400 : null);
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    const start = s.now + 100;
    s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: start, leader: true }), 0, s.now));
    s.runUntil(start + 10);
    // The re-add drops the relay's pending handshake: only one made after it can count.
    expect(s.readdsSince(start)).toEqual([{ at: start, endpoint: LAN }]);

    // With the relay confirmed first, the leader keeps its delay (the follower's initiation may win).
    const t = relayed(undefined, { leaderDelayMs: 50 });
    const later = t.now + 100;
    t.apply(t.mgr.punch(punchMessage({ attemptId: 'p3', startAt: later, leader: true }), 0, t.now));
    t.runUntil(later + 10);
    expect(t.readdsSince(later)).toEqual([]);
  });

  it('goes to a relay that arrives after a failed attempt at once, and reports it once a handshake comes through', () => {
    const s = failedPunch();
    s.runUntil(T0 + 2000);
    s.responder = (ep) => (ep === RELAY_ENDPOINT ? 20 : null);
    const effects = s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    expect(effects[0]).toEqual({
      type: 'readd-peer',
      peerId: PEER_ID,
      publicKey: PEER_KEY,
      endpoint: RELAY_ENDPOINT,
    });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'none', endpoint: RELAY_ENDPOINT });
    s.runUntil(T0 + 2100);
    // Handshake at +20, seen at the next 25 ms poll.
    expect(s.reports.slice(1)).toEqual([relayReport(25)]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({
      path: 'relay',
      relayName: 'relay-fra',
      endpoint: RELAY_ENDPOINT,
      kind: null,
      phase: 'backoff',
      since: T0 + 2025,
    });
  });

  it('uses the relay at once when the peer has no candidates at all', () => {
    const s = new Scenario();
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('dormant');
    // The broker relays the pair (the peer wants it): WireGuard goes there at once.
    s.responder = () => 5;
    expect(s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now))[0]).toMatchObject({
      type: 'readd-peer',
      endpoint: RELAY_ENDPOINT,
    });
    s.runUntil(T0 + 100);
    expect(s.reports).toEqual([relayReport(25)]);
  });

  it('re-announces a confirmed relay when the control connection comes up, not once the path went dormant', () => {
    const s = relayed();
    expect(s.mgr.controlConnected()).toEqual([
      { type: 'send', message: { type: 'want-path', peerId: PEER_ID, relayed: true } },
    ]);
    // No traffic beyond keepalives for the idle time: dormant, nothing for the broker to keep.
    s.runUntil(T0 + 200_000);
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('dormant');
    expect(s.mgr.controlConnected()).toEqual([]);
  });

  it('on a working relay starts no retries of its own; a punch or a network change retries with a short window', () => {
    const s = relayed();
    // The backoff retry (5 s after the punch failed) is not taken: it would cut the relayed traffic.
    s.runUntil(T0 + 60_000);
    expect(s.readdsSince(T0 + 2001)).toEqual([]);
    expect(s.reports.map((r) => r.attemptId)).toEqual(['p1', RELAY_ID]);
    // A network change: LAN gets 300 ms, the reflexive candidate 600 (not 1000), then the relay again.
    const at = s.now;
    s.apply(s.mgr.networkChanged(s.now));
    s.runUntil(at + 3000);
    expect(s.readdsSince(at).map((r) => [r.at - at, r.endpoint])).toEqual([
      [0, LAN],
      [200, LAN],
      [300, REFLEXIVE],
      [500, REFLEXIVE],
      [800, REFLEXIVE],
      [900, RELAY_ENDPOINT],
    ]);
    expect(s.reports.slice(2).map((r) => [r.attemptId, r.result, r.elapsedMs])).toEqual([
      ['local:1', 'failed', 900],
      [RELAY_ID, 'relay', 25],
    ]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', since: at + 925 });
  });

  it('on a working relay a peer’s new candidates start no attempt: the broker punches if they can work', () => {
    const s = relayed();
    const at = s.now;
    // As after a broker restart: the reflectors see the peer's symmetric NAT at new ports.
    for (const port of [41001, 41002])
      s.apply(
        s.mgr.setPeers(
          [
            {
              peerId: PEER_ID,
              publicKey: PEER_KEY,
              candidates: [{ endpoint: `203.0.113.7:${port}`, kind: 'reflexive', priority: 2000 }],
            },
          ],
          s.now,
        ),
      );
    s.runUntil(at + 60_000);
    expect(s.readdsSince(at)).toEqual([]);
    expect(s.reports.map((r) => r.attemptId)).toEqual(['p1', RELAY_ID]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', since: T0 + 2025 });
    // A punch for them still leaves the relay to try.
    s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: s.now }), 0, s.now));
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('probing');
  });

  it('leaves the relay for a direct path that works (here after a network change)', () => {
    const s = relayed();
    s.responder = (ep) => (ep === REFLEXIVE ? 10 : null);
    const effects = s.apply(s.mgr.networkChanged(s.now));
    expect(effects[0]).toMatchObject({ type: 'readd-peer', endpoint: LAN });
    s.runUntil(T0 + 60_000);
    expect(s.reports.at(-1)).toMatchObject({ attemptId: 'local:1', result: 'direct', endpoint: REFLEXIVE });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', relayName: null });
    expect(s.readdsSince(T0 + 2101).filter((r) => r.endpoint === RELAY_ENDPOINT)).toEqual([]);
  });

  it('while direct only remembers a relay, uses it once the direct path dies, and forgets a released one', () => {
    const s = new Scenario();
    s.responder = (ep) => (ep === REFLEXIVE ? 30 : null);
    const peer = { peerId: PEER_ID, publicKey: PEER_KEY };
    s.apply(
      s.mgr.setPeers(
        [{ ...peer, candidates: [{ endpoint: REFLEXIVE, kind: 'reflexive', priority: 1 }] }],
        s.now,
      ),
    );
    s.demand();
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    expect(s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now)).slice(0, -1)).toEqual([]);
    // In use, but no handshake for 3 minutes: an attempt (600 ms with a relay), then the relay.
    s.responder = (ep) => (ep === RELAY_ENDPOINT ? 20 : null);
    busy(s, T0 + 200_000, 1000, 10_000, 1000);
    const readds = s.readdsSince(T0 + 1);
    expect(readds.at(-1)!.endpoint).toBe(RELAY_ENDPOINT);
    expect(readds.at(-1)!.at - readds.at(-2)!.at).toBeLessThanOrEqual(600);
    // (and again at every backoff retry)
    expect(s.reports.slice(1, 3).map((r) => r.result)).toEqual(['failed', 'relay']);

    // The same again with the relay released while direct: the failure parks, no relay.
    const t = new Scenario();
    t.responder = (ep) => (ep === REFLEXIVE ? 30 : null);
    t.apply(
      t.mgr.setPeers(
        [{ ...peer, candidates: [{ endpoint: REFLEXIVE, kind: 'reflexive', priority: 1 }] }],
        t.now,
      ),
    );
    t.demand();
    t.apply(t.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), t.now));
    expect(t.apply(t.mgr.releaseRelay(PEER_ID, ALLOCATION_ID, t.now)).slice(0, -1)).toEqual([]);
    t.responder = () => null;
    busy(t, T0 + 200_000, 0, 1000, 1000); // packets every second: the dead path stays wanted
    expect(t.readdsSince(T0 + 1).filter((r) => r.endpoint === RELAY_ENDPOINT)).toEqual([]);
    expect(t.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'none', phase: 'backoff' });
  });

  it('on relay-release while relayed tries direct at once and drops the relay; another allocation id is ignored', () => {
    const s = relayed();
    expect(s.apply(s.mgr.releaseRelay(PEER_ID, '00000000-0000-4000-8000-000000000000', s.now))).toEqual([
      expect.objectContaining({ type: 'schedule-tick' }),
    ]);
    const effects = s.apply(s.mgr.releaseRelay(PEER_ID, ALLOCATION_ID, s.now));
    expect(effects[0]).toMatchObject({ type: 'readd-peer', endpoint: LAN });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'none', phase: 'probing', since: s.now });
    // The host still sends to the peer after that attempt failed: the backoff retry is wanted.
    s.runUntil(s.now + 1500);
    s.traffic(PEER_KEY);
    s.runUntil(T0 + 30_000);
    expect(s.readdsSince(T0 + 2101).filter((r) => r.endpoint === RELAY_ENDPOINT)).toEqual([]);
    // Without a relay, the local attempt had the full 1000 ms per candidate again.
    expect(s.reports.slice(2).map((r) => [r.attemptId, r.result, r.elapsedMs])).toEqual([
      ['local:1', 'failed', 1300],
      ['local:2', 'failed', 1300],
    ]);
    expect(s.mgr.relays().size).toBe(0);
  });

  it('arriving during its own attempt, shortens it to the relayed window, then takes over', () => {
    const s = new Scenario();
    const candidates = [{ endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 1 }];
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], s.now));
    s.demand(); // the attempt starts for the host's packet
    const start = s.readdsSince(T0)[0]!.at;
    expect(s.now - start).toBeLessThan(600);
    expect(s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now)).slice(0, -1)).toEqual([]);
    s.runUntil(start + 700);
    expect(s.reports).toEqual([
      expect.objectContaining({ attemptId: 'local:1', result: 'failed', elapsedMs: 600 }),
    ]);
    expect(s.readdsSince(T0).at(-1)).toEqual({ at: start + 600, endpoint: RELAY_ENDPOINT });
  });

  it('a new allocation replaces the old one: re-added there if relayed, renamed only if the endpoint is the same', () => {
    const s = relayed();
    const other = '192.0.2.77:40002';
    const next = relayPath({
      allocationId: '4c3d2b1a-0000-4000-8000-000000000001',
      relayName: 'relay-ams',
      endpoint: other,
      wgEndpoint: other,
    });
    s.responder = (ep) => (ep === other ? 15 : null);
    expect(s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, next, s.now))[0]).toMatchObject({
      type: 'readd-peer',
      endpoint: other,
    });
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('none');
    s.runUntil(s.now + 100);
    expect(s.reports.at(-1)).toMatchObject({
      attemptId: `relay:${next.allocationId}`,
      result: 'relay',
      endpoint: other,
    });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', relayName: 'relay-ams' });
    // Releasing the replaced allocation changes nothing.
    expect(s.apply(s.mgr.releaseRelay(PEER_ID, ALLOCATION_ID, s.now)).slice(0, -1)).toEqual([]);
    const renamed = { ...next, relayName: 'relay-ams-2' };
    expect(s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, renamed, s.now)).slice(0, -1)).toEqual([]);
    expect(s.mgr.statusOf(PEER_ID)?.relayName).toBe('relay-ams-2');
  });

  it('as leader re-adds at the relay on a growing schedule until a handshake; as follower once', () => {
    const s = failedPunch();
    s.runUntil(T0 + 2000);
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    s.runUntil(T0 + 6200); // the backoff retry of direct is due at T0+6300
    expect(s.readdsSince(T0 + 2000).map((r) => r.at - T0 - 2000)).toEqual([
      0, 200, 500, 950, 1625, 2637.5, 4156.25,
    ]);
    // WireGuard's own 5 s retry got through: seen at the next wake-up (the backoff's), before it acts.
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.runUntil(T0 + 6300);
    expect(s.reports.map((r) => r.result)).toEqual(['failed', 'relay']);

    const f = failedPunch(FOLLOWER_KEY);
    f.runUntil(T0 + 2000);
    f.apply(f.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), f.now));
    f.runUntil(T0 + 6000);
    expect(f.readdsSince(T0 + 2000).map((r) => r.at - T0 - 2000)).toEqual([0]);
  });

  it('holds the relay until a punch starts, and returns to it when the punch fails', () => {
    const s = relayed();
    s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: T0 + 4000 }), 0, s.now));
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ phase: 'scheduled', path: 'relay' });
    s.runUntil(T0 + 3999);
    expect(s.readdsSince(T0 + 2001).filter((r) => r.endpoint !== RELAY_ENDPOINT)).toEqual([]);
    s.runUntil(T0 + 6000);
    const readds = s.readdsSince(T0 + 3999);
    expect(readds[0]).toEqual({ at: T0 + 4000, endpoint: LAN });
    // The broker's deadline stands (1000 ms): LAN 300 + reflexive 1000, then the relay at once.
    expect(readds.at(-1)).toEqual({ at: T0 + 5300, endpoint: RELAY_ENDPOINT });
    expect(s.reports.slice(2).map((r) => [r.attemptId, r.result])).toEqual([
      ['p2', 'failed'],
      [RELAY_ID, 'relay'],
    ]);
  });

  it('as a punch follower points WireGuard back at the candidate when a relayed packet in flight moved it to the relay', () => {
    // The follower sends once per candidate and then only answers: nothing of its own would move
    // WireGuard off the relay again before the deadline.
    const s = relayed(FOLLOWER_KEY);
    const candidates = [{ endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 1 }];
    s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: T0 + 4000, candidates }), 0, s.now));
    s.runUntil(T0 + 4050);
    expect(s.readdsSince(T0 + 4000)).toEqual([{ at: T0 + 4000, endpoint: REFLEXIVE }]);
    // The peer's handshake completes, but a packet it sent through the relay just before the punch
    // arrives last: WireGuard roams there.
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.runUntil(T0 + 4400);
    const repointed = s.log.filter((l) => l.at > T0 + 4050 && l.effect.type === 'set-endpoint');
    expect(repointed.map((l) => l.effect)).toEqual([expect.objectContaining({ endpoint: REFLEXIVE })]);
    expect(s.peer(PEER_KEY).endpoint).toBe(REFLEXIVE);
    // Not yet direct: that handshake may have come through the relay.
    expect(s.reports.slice(2)).toEqual([]);
    // The peer's packets now arrive with WireGuard on the candidate: the punch worked.
    s.traffic(PEER_KEY, 0, 96);
    s.runUntil(T0 + 4800);
    expect(s.reports.slice(2)).toEqual([
      expect.objectContaining({ attemptId: 'p2', result: 'direct', endpoint: REFLEXIVE }),
    ]);
    expect(s.readdsSince(T0 + 4001)).toEqual([]);
  });

  it('as a punch leader does not take the relay session handshake for the candidate one', () => {
    const s = new Scenario({ leaderDelayMs: 50 });
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    s.responder = (ep) => (ep === RELAY_ENDPOINT ? 20 : null);
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    s.runUntil(T0 + 100);
    // The punch starts 280 ms after the relay handshake (inside its UAPI second): the leader only
    // sets the endpoint, so WireGuard still reports that handshake.
    const candidates = [{ endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 1 }];
    s.apply(s.mgr.punch(punchMessage({ attemptId: 'p2', startAt: T0 + 300, candidates }), 0, s.now));
    s.runUntil(T0 + 349);
    expect(s.reports.map((r) => r.result)).toEqual(['relay']);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ phase: 'probing', path: 'none' });
    s.responder = (ep) => (ep === REFLEXIVE ? 10 : null);
    s.runUntil(T0 + 400);
    expect(s.reports.at(-1)).toMatchObject({ attemptId: 'p2', result: 'direct', elapsedMs: 75 });
  });

  it('notices the peer reaching us directly while relayed', () => {
    const s = relayed();
    s.runUntil(T0 + 3000);
    s.handshake(PEER_KEY, REFLEXIVE);
    // Seen at the next wake-up (the backoff retry at T0+6300), which then has nothing left to try.
    s.runUntil(T0 + 6300);
    expect(s.reports.at(-1)).toMatchObject({
      result: 'direct',
      endpoint: REFLEXIVE,
      attemptId: 'observed:1',
    });
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', since: T0 + 6300 });
    expect(s.readdsSince(T0 + 2001)).toEqual([]);
  });

  it('follows the peer onto the relay when its handshake comes through it while we are direct', () => {
    const s = new Scenario();
    s.responder = (ep) => (ep === REFLEXIVE ? 30 : null);
    const candidates = [{ endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 1 }];
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], s.now));
    s.demand();
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    const directAt = s.now;
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    s.runUntil(T0 + 20_000);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.runUntil(T0 + 25_000);
    expect(s.reports.at(-1)).toEqual(relayReport(0));
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', phase: 'backoff' });
    // No re-add: the peer's session through the relay works.
    expect(s.readdsSince(directAt)).toEqual([]);
  });

  it('re-adds at the relay when its TCP link reconnected, only while WireGuard is on that link', () => {
    const s = relayed();
    const reports = s.reports.length;
    // Another endpoint (an older link) or another peer: nothing.
    expect(s.mgr.relayLinkReconnected(PEER_ID, '127.0.0.1:1', s.now).slice(0, -1)).toEqual([]);
    expect(s.mgr.relayLinkReconnected('someone-else', RELAY_ENDPOINT, s.now).slice(0, -1)).toEqual([]);
    // The link at WireGuard's endpoint: one re-add there, confirmed again by the fresh handshake.
    const effects = s.apply(s.mgr.relayLinkReconnected(PEER_ID, RELAY_ENDPOINT, s.now));
    expect(effects.filter((e) => e.type === 'readd-peer')).toEqual([
      { type: 'readd-peer', peerId: PEER_ID, publicKey: PEER_KEY, endpoint: RELAY_ENDPOINT },
    ]);
    s.runUntil(s.now + 1000);
    expect(s.reports.slice(reports)).toEqual([relayReport(25)]); // seen at the next 25 ms poll
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('relay');

    // While direct the link is not in use: nothing.
    s.responder = (ep) => (ep === REFLEXIVE ? 10 : null);
    s.apply(s.mgr.networkChanged(s.now));
    s.runUntil(s.now + 5000);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    expect(s.mgr.relayLinkReconnected(PEER_ID, RELAY_ENDPOINT, s.now).slice(0, -1)).toEqual([]);
  });

  it('re-adds at the relay when its handshakes go stale while in use', () => {
    const s = new Scenario();
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    s.responder = () => 5;
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    s.runUntil(T0 + 100);
    expect(s.reports).toEqual([relayReport(25)]);
    s.responder = () => null;
    busy(s, T0 + 25 + 180_000, 1000, 10_000, 1000);
    expect(s.readdsSince(T0 + 1)).toEqual([]);
    busy(s, T0 + 25 + 190_000, 1000, 10_000, 1000);
    const readds = s.readdsSince(T0 + 1);
    expect(readds[0]).toEqual({ at: T0 + 25 + 180_001, endpoint: RELAY_ENDPOINT });
    expect(readds.every((r) => r.endpoint === RELAY_ENDPOINT)).toBe(true);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('none');
  });

  it('ignores relay messages for unknown peers or another key', () => {
    const s = new Scenario();
    expect(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now)).toEqual([]);
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates: [] }], s.now));
    expect(s.mgr.setRelay(PEER_ID, FOLLOWER_KEY, relayPath(), s.now).slice(0, -1)).toEqual([]);
    expect(s.mgr.releaseRelay('someone-else', ALLOCATION_ID, s.now)).toHaveLength(1);
    expect(s.mgr.relays().size).toBe(0);
    expect(s.mgr.hasPeer(PEER_ID, PEER_KEY)).toBe(true);
    expect(s.mgr.hasPeer(PEER_ID, FOLLOWER_KEY)).toBe(false);
  });
});

describe('relay paths: wanting', () => {
  it('asks no more once the broker answered with a relay: it waits for the relay to confirm; a release asks again', () => {
    const s = new Scenario();
    const candidates = [{ endpoint: REFLEXIVE, kind: 'reflexive' as const, priority: 2000 }];
    s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], s.now));
    s.demand();
    busy(s, T0 + 3000);
    // At once, then after 2 s while no path.
    expect(s.wants.map((w) => w.peerId)).toEqual([PEER_ID, PEER_ID]);
    // The broker relays (the peer's NAT is symmetric); the peer's side is not bound there yet.
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), s.now));
    busy(s, T0 + 60_000);
    expect(s.wants).toHaveLength(2); // another want would only punch both sides off the relay
    expect(s.mgr.statusOf(PEER_ID)?.endpoint).toBe(RELAY_ENDPOINT);
    // The peer's side binds at the relay: the next re-add there confirms it, reported; nothing to ask.
    s.responder = (ep) => (ep === RELAY_ENDPOINT ? 20 : null);
    busy(s, T0 + 120_000);
    expect(s.reports.filter((r) => r.result === 'relay')).toHaveLength(1);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('relay');
    expect(s.wants).toHaveLength(2);

    // Without a confirmation, a released relay leaves the demand unanswered: asked again.
    const t = new Scenario();
    t.apply(t.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], t.now));
    t.demand();
    busy(t, T0 + 3000);
    t.apply(t.mgr.setRelay(PEER_ID, PEER_KEY, relayPath(), t.now));
    busy(t, T0 + 30_000);
    expect(t.wants).toHaveLength(2);
    t.apply(t.mgr.releaseRelay(PEER_ID, ALLOCATION_ID, t.now));
    busy(t, T0 + 31_000);
    expect(t.wants).toHaveLength(3);
  });
});
