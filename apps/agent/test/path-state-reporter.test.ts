import type { PathStateMessage } from '@trellis/proto';
import { MAX_PATH_STATES, PathStateMessage as PathStateSchema } from '@trellis/proto';
import {
  PATH_STATE_MIN_INTERVAL_MS,
  PATH_STATE_SETTLE_MS,
  PathStateReporter,
} from '../src/agent/path-state-reporter';
import type { PeerPathStatus } from '../src/path';
import { FakeTimers } from './helpers/fake-timers';

const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** A peer's status as PathManager gives it; only the fields the reporter reads matter. */
function status(n: number, extra: Partial<PeerPathStatus>): PeerPathStatus {
  return {
    peerId: id(n),
    publicKey: `${'A'.repeat(43)}=`,
    path: 'none',
    endpoint: null,
    kind: null,
    relayName: null,
    since: 0,
    phase: 'idle',
    attemptId: null,
    lastHandshakeMs: 0,
    failures: 0,
    ...extra,
  };
}

function setup() {
  const timers = new FakeTimers();
  let statuses: PeerPathStatus[] = [];
  const sent: PathStateMessage[] = [];
  const reporter = new PathStateReporter({
    statuses: () => statuses,
    send: (m) => sent.push(PathStateSchema.parse(m)),
    timers,
  });
  /** Fires the one pending report timer; returns its delay. */
  const fire = () => {
    const [t] = timers.timeouts();
    if (!t) throw new Error('no report scheduled');
    timers.fire(t);
    return t.ms;
  };
  return {
    timers,
    sent,
    reporter,
    fire,
    set: (s: PeerPathStatus[]) => {
      statuses = s;
    },
  };
}

describe('PathStateReporter (peer paths for the dashboard topology)', () => {
  it('reports everything after a connect, then only changes, coalesced and at most once a second', () => {
    const { timers, sent, reporter, fire, set } = setup();
    const now = timers.now();
    set([
      status(1, { path: 'direct-lan', phase: 'direct', since: now - 4_000 }),
      status(2, { path: 'relay', relayName: 'relay-1', phase: 'backoff', since: now - 1_000 }),
      status(3, { phase: 'probing', since: now }),
      status(4, { phase: 'dormant', since: now - 9_000 }),
    ]);
    reporter.connected();
    expect(fire()).toBe(PATH_STATE_SETTLE_MS);
    expect(sent).toEqual([
      {
        type: 'path-state',
        full: true,
        paths: [
          { peerId: id(1), path: 'direct', forMs: 4_000 + PATH_STATE_SETTLE_MS },
          { peerId: id(2), path: 'relayed', relay: 'relay-1', forMs: 1_000 + PATH_STATE_SETTLE_MS },
          { peerId: id(3), path: 'connecting', forMs: PATH_STATE_SETTLE_MS },
        ],
      },
    ]);

    // Steps that change nothing send nothing.
    reporter.changed();
    fire();
    expect(sent).toHaveLength(1);

    // Peer 3 goes direct, peer 1 goes dormant; many steps in a burst make one report, a second after the last.
    set([
      status(1, { phase: 'dormant', since: timers.now() }),
      status(2, { path: 'relay', relayName: 'relay-1', phase: 'backoff', since: 0 }),
      status(3, { path: 'direct-internet', phase: 'direct', since: timers.now() }),
    ]);
    reporter.changed();
    reporter.changed();
    expect(timers.timeouts()).toHaveLength(1);
    expect(fire()).toBeLessThanOrEqual(PATH_STATE_MIN_INTERVAL_MS);
    expect(sent[1]).toEqual({
      type: 'path-state',
      paths: [
        { peerId: id(3), path: 'direct', forMs: expect.any(Number) },
        { peerId: id(1), path: 'none', forMs: 0 },
      ],
    });

    // A flapping path right after: held back to one report per interval.
    set([status(3, { phase: 'probing', since: timers.now() })]);
    reporter.changed();
    expect(fire()).toBe(PATH_STATE_MIN_INTERVAL_MS);
    expect(sent[2]!.paths.map((p) => [p.peerId, p.path])).toEqual([
      [id(3), 'connecting'],
      [id(2), 'none'],
    ]);
  });

  it('after a reconnect reports in full again (what was said on the old connection may be lost)', () => {
    const { sent, reporter, fire, set, timers } = setup();
    set([status(1, { path: 'direct-lan', phase: 'direct', since: timers.now() })]);
    reporter.connected();
    fire();
    reporter.changed();
    fire();
    expect(sent).toHaveLength(1);
    reporter.connected();
    fire();
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ full: true, paths: [{ peerId: id(1), path: 'direct' }] });
  });

  it('a full report with no path says so; a large one is split, flagged full only in its first part', () => {
    const { sent, reporter, fire, set, timers } = setup();
    reporter.connected();
    fire();
    expect(sent).toEqual([{ type: 'path-state', full: true, paths: [] }]);
    const many = Array.from({ length: MAX_PATH_STATES + 5 }, (_, i) =>
      status(i + 1, { path: 'direct-internet', phase: 'direct', since: timers.now() }),
    );
    set(many);
    reporter.connected();
    fire();
    expect(sent.slice(1).map((m) => [m.full, m.paths.length])).toEqual([
      [true, MAX_PATH_STATES],
      [undefined, 5],
    ]);
  });

  it('stop cancels a pending report', () => {
    const { reporter, timers } = setup();
    reporter.connected();
    reporter.stop();
    expect(timers.timeouts()).toEqual([]);
  });
});
