import type { PathReportMessage } from '@trellis/proto';
import { RelayedPeers } from '../../src/control/relayed-peers';

const D = '00000000-0000-4000-8000-00000000000d';
const P = '00000000-0000-4000-8000-00000000000e';
const Q = '00000000-0000-4000-8000-00000000000f';
const report = (peerId: string, result: PathReportMessage['result']): PathReportMessage => ({
  type: 'path',
  peerId,
  attemptId: 'local:1',
  result,
  elapsedMs: 1,
});
const all = () => true;
const peersOf = (r: RelayedPeers) => r.wants(D, all).map((w) => w.peerId);

describe('RelayedPeers', () => {
  it('adds a peer on a relayed want or a relay report, as a relayed want from the device', () => {
    const r = new RelayedPeers();
    r.noted(D, { type: 'want-path', peerId: P, relayed: true });
    r.noted(D, report(Q, 'relay'));
    expect(r.wants(D, all)).toEqual([
      { kind: 'want', from: D, peerId: P, relayed: true },
      { kind: 'want', from: D, peerId: Q, relayed: true },
    ]);
  });

  it('removes it on a direct report or a release sent to the device', () => {
    for (const leave of [
      (r: RelayedPeers) => r.noted(D, report(P, 'direct')),
      (r: RelayedPeers) => r.released(D, P, 'x1'),
    ]) {
      const r = new RelayedPeers();
      r.noted(D, report(P, 'relay'));
      leave(r);
      expect(peersOf(r)).toEqual([]);
    }
  });

  it('keeps it through a failed punch and a plain want (a dormant peer waking on its relay), and forgets the device when its connection goes', () => {
    const r = new RelayedPeers();
    r.noted(D, report(P, 'relay'));
    r.noted(D, report(P, 'failed'));
    r.noted(D, { type: 'want-path', peerId: P });
    expect(peersOf(r)).toEqual([P]);
    r.forget(D);
    expect(peersOf(r)).toEqual([]);
  });

  it('a release of an older allocation leaves the one the agent moved to; a report that crossed a release is ignored', () => {
    const r = new RelayedPeers();
    r.noted(D, { ...report(P, 'relay'), attemptId: 'relay:x2' });
    r.released(D, P, 'x1');
    expect(peersOf(r)).toEqual([P]);
    r.released(D, P, 'x2');
    expect(peersOf(r)).toEqual([]);
    // The agent confirmed x2 just before it heard x2 was released.
    r.noted(D, { ...report(P, 'relay'), attemptId: 'relay:x2' });
    expect(peersOf(r)).toEqual([]);
    r.noted(D, { ...report(P, 'relay'), attemptId: 'relay:x3' });
    expect(peersOf(r)).toEqual([P]);
  });

  it('leaves out peers the policy hides now', () => {
    const r = new RelayedPeers();
    r.noted(D, report(P, 'relay'));
    r.noted(D, report(Q, 'relay'));
    expect(r.wants(D, (peer) => peer !== P).map((w) => w.peerId)).toEqual([Q]);
  });
});
