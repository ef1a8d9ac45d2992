import type { Candidate } from '@trellis/proto';
import { PEER_ID, PEER_KEY, punchMessage, RELAY_ENDPOINT, relayPath, Scenario, T0 } from './scenario';

/**
 * WireGuard on a relay address is never a direct path, in status or in a `path` report: also when
 * this agent holds no `relay` for that allocation (a lab run showed `direct-internet` for an
 * endpoint that was the relay's, while the peer said `relay`), and when its own allocation is used
 * over the TCP fallback but WireGuard reports the allocation's UDP address.
 */
const RELAY_HOST = RELAY_ENDPOINT.slice(0, RELAY_ENDPOINT.lastIndexOf(':'));
const REFLEXIVE = '203.0.113.7:41000';
const candidates: Candidate[] = [{ endpoint: REFLEXIVE, kind: 'reflexive', priority: 1 }];

/**
 * A peer whose own attempt (for the host's first packet, seen at +250) failed (no candidate
 * answers), in backoff; the netmap lists the relay.
 */
function inBackoff(): Scenario {
  const s = new Scenario();
  s.mgr.setRelayHosts([RELAY_HOST]);
  s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], s.now));
  s.demand();
  s.runUntil(T0 + 1300);
  expect(s.reports.map((r) => r.result)).toEqual(['failed']);
  expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('backoff');
  return s;
}

/** A direct path on REFLEXIVE, wanted by the host's first packet (the candidate answers every re-add after 20 ms). */
function direct(): Scenario {
  const s = new Scenario();
  s.mgr.setRelayHosts([RELAY_HOST]);
  s.responder = (ep) => (ep === REFLEXIVE ? 20 : null);
  s.apply(s.mgr.setPeers([{ peerId: PEER_ID, publicKey: PEER_KEY, candidates }], s.now));
  s.demand();
  s.runUntil(T0 + 400);
  expect(s.reports).toEqual([expect.objectContaining({ result: 'direct', endpoint: REFLEXIVE })]);
  return s;
}

const directReports = (s: Scenario) => s.reports.filter((r) => r.result === 'direct');

describe('relay endpoints are never direct', () => {
  it('a handshake through an allocation we hold no relay for is no direct path', () => {
    const s = inBackoff();
    s.runUntil(T0 + 2000);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.wake();
    expect(directReports(s)).toEqual([]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'none', phase: 'backoff', kind: null });
  });

  it('a peer that lives on a relay host still goes direct at its own candidate', () => {
    const s = new Scenario();
    const colocated = `${RELAY_HOST}:51820`;
    s.mgr.setRelayHosts([RELAY_HOST]);
    s.apply(
      s.mgr.setPeers(
        [
          {
            peerId: PEER_ID,
            publicKey: PEER_KEY,
            candidates: [{ endpoint: colocated, kind: 'observed', priority: 1 }],
          },
        ],
        s.now,
      ),
    );
    s.demand();
    s.runUntil(T0 + 1300); // the attempt (for the host's packet, at +250) failed: in backoff
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('backoff');
    s.handshake(PEER_KEY, colocated);
    s.wake();
    expect(directReports(s)).toEqual([
      expect.objectContaining({ endpoint: colocated, attemptId: 'observed:2' }),
    ]);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'direct-internet', endpoint: colocated });
  });

  it('during an attempt, a handshake through an unknown allocation neither succeeds nor is tried as learned', () => {
    const s = new Scenario();
    s.mgr.setRelayHosts([RELAY_HOST]);
    s.apply(s.mgr.punch(punchMessage({ startAt: T0, candidates }), 0, s.now));
    s.runUntil(T0 + 100);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.runUntil(T0 + 2000);
    expect(s.reports.map((r) => r.result)).toEqual(['failed']);
    expect(s.readdsSince(T0).every((r) => r.endpoint === REFLEXIVE)).toBe(true);
  });

  it('a direct path whose peer moves to an allocation we hold no relay for is left, without a report', () => {
    const s = direct();
    s.runUntil(T0 + 5000);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.wake();
    expect(s.reports).toHaveLength(1);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({
      path: 'none',
      phase: 'backoff',
      endpoint: RELAY_ENDPOINT,
      since: T0 + 5000,
    });
  });

  it('left for an allocation we hold no relay for, with no traffic since, goes dormant (an earlier backoff’s demand does not count)', () => {
    const s = inBackoff();
    // Traffic in this first backoff: its retry goes direct (the candidate answers now).
    s.traffic(PEER_KEY, 96, 0);
    s.responder = (ep) => (ep === REFLEXIVE ? 20 : null);
    s.runUntil(T0 + 8000);
    expect(s.mgr.statusOf(PEER_ID)?.path).toBe('direct-internet');
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.wake();
    const movedAt = s.now;
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('backoff');
    // No packets for the peer from here: the backoff ends dormant, WireGuard left on the peer's relay.
    s.runUntil(movedAt + 60_000);
    expect(s.mgr.statusOf(PEER_ID)?.phase).toBe('dormant');
    expect(s.readdsSince(movedAt)).toEqual([]);
  });

  it('over the TCP fallback, WireGuard on the allocation UDP address confirms the relay, never direct', () => {
    const s = inBackoff();
    s.runUntil(T0 + 2000);
    const relay = relayPath({ wgEndpoint: '127.0.0.1:40100' });
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relay, s.now));
    expect(s.readdsSince(T0 + 2000)).toEqual([{ at: T0 + 2000, endpoint: '127.0.0.1:40100' }]);
    s.runUntil(T0 + 2050);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.wake();
    expect(s.reports.map((r) => r.result)).toEqual(['failed', 'relay']);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', relayName: 'relay-fra' });
  });

  it('a direct path whose peer moves to our allocation UDP address (we use its TCP link) adopts the relay', () => {
    const s = direct();
    s.apply(s.mgr.setRelay(PEER_ID, PEER_KEY, relayPath({ wgEndpoint: '127.0.0.1:40100' }), s.now));
    s.runUntil(T0 + 5000);
    s.handshake(PEER_KEY, RELAY_ENDPOINT);
    s.wake();
    expect(s.reports.map((r) => r.result)).toEqual(['direct', 'relay']);
    expect(s.mgr.statusOf(PEER_ID)).toMatchObject({ path: 'relay', phase: 'backoff' });
  });
});
