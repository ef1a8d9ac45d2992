import type { PathReportMessage } from '@trellis/proto';
import { FakeRelay, FakeRelayDirectory } from '../support/fake-relay-directory';
import { A, ACCOUNT, cluster } from '../support/paths-cluster';

/** An instance id below A's: a device connected there makes it the owner. */
const Z = '000000000009';

const relayReport = (peerId: string): PathReportMessage => ({
  type: 'path',
  peerId,
  attemptId: 'local:1',
  result: 'relay',
  elapsedMs: 3,
});

/**
 * A new owner of an account's pair paths knows no pair; the agents announce their relayed peers
 * only when their own connection comes up. These are about an owner that changes under agents
 * that stay connected (the rolling-upgrade lab test lost a relayed pair this way).
 */
describe("pair paths: an owner that changes takes up the devices' relayed pairs", () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('an instance that becomes the owner hears the relayed peers of every instance and claims the allocation', async () => {
    const { a, b, ia, ib, connect, of, relayed, instance, device } = cluster();
    const allocationId = await relayed();
    ia.hub.pathMessage(a.id, relayReport(b.id));
    ib.hub.pathMessage(b.id, relayReport(a.id));
    // A device connects to Z, whose id is lower: Z owns the account from here.
    const iz = instance(Z, new FakeRelayDirectory());
    await connect(iz, device('c', '100.64.0.3', '203.0.113.30:3333'));
    await jest.advanceTimersByTimeAsync(0);
    expect(ia.hub.pairCount).toBe(0);
    expect(iz.hub.pairCount).toBe(1);
    // The allocation B's relay holds was claimed, not a new one made; both agents keep it.
    expect(ib.local.asked).toEqual(['r1']);
    expect(ib.local.released).toEqual([]);
    expect(of(a, 'relay').at(-1)!.allocationId).toBe(allocationId);
    expect(of(b, 'relay').at(-1)!.allocationId).toBe(allocationId);
    for (const s of [ia, ib, iz]) s.hub.stop();
  });

  it('the owner dies under a pair whose devices stay connected elsewhere: the next owner keeps it when its relay moves', async () => {
    const { bus, a, b, ia, ib, relayAtB, connect, offline, of, device, instanceC } = cluster();
    const c = device('c', '100.64.0.3', '203.0.113.30:3333');
    await connect(ib, a);
    await connect(ib, b);
    await connect(ia, c); // A owns the account; the pair's devices and the relay are B's
    ib.hub.pathMessage(b.id, { type: 'want-path', peerId: a.id });
    await jest.advanceTimersByTimeAsync(0);
    const allocationId = of(a, 'relay')[0]!.allocationId;
    ib.hub.pathMessage(a.id, relayReport(b.id));
    ib.hub.pathMessage(b.id, relayReport(a.id));
    // A dies: its lease is taken over and its device marked offline; B owns the account now.
    ia.hub.stop();
    ia.relays.stop();
    await bus.publish({ kind: 'instance-gone', instance: A });
    await offline(c);
    await jest.advanceTimersByTimeAsync(0);
    expect(ib.hub.pairCount).toBe(1);
    expect(ib.local.asked).toEqual(['r1']);
    // The proxy cuts the relay's session; it reconnects to C, which adopts what it reports, then
    // B's grace for it ends. B claims it at C, so C's adoption grace will not release it.
    const { local: localC, relays: relaysC } = instanceC();
    const again = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    localC.adopt(again, ACCOUNT, [a.publicKey, b.publicKey], allocationId);
    localC.up(again);
    await jest.advanceTimersByTimeAsync(0);
    ib.local.down(relayAtB);
    await jest.advanceTimersByTimeAsync(0);
    expect(localC.adopted).toEqual([]);
    expect(of(a, 'relay-release')).toEqual([]);
    expect(of(b, 'relay-release')).toEqual([]);
    relaysC.stop();
    ib.hub.stop();
  });

  it('a peer the device left the relay for (direct, or released) is not wanted again', async () => {
    const { a, b, ia, ib, connect, of, relayed, instance, device } = cluster();
    const allocationId = await relayed();
    ia.hub.pathMessage(a.id, relayReport(b.id));
    ib.hub.pathMessage(b.id, relayReport(a.id));
    // Both sides found a direct path: the owner releases the allocation and tells them.
    for (const [hub, from, peer] of [
      [ia.hub, a, b],
      [ib.hub, b, a],
    ] as const)
      hub.pathMessage(from.id, { ...relayReport(peer.id), result: 'direct', attemptId: 'local:2' });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(of(b, 'relay-release')).toEqual([{ type: 'relay-release', peerId: a.id, allocationId }]);
    const iz = instance(Z, new FakeRelayDirectory());
    await connect(iz, device('c', '100.64.0.3', '203.0.113.30:3333'));
    await jest.advanceTimersByTimeAsync(0);
    expect(iz.hub.pairCount).toBe(0);
    expect(ib.local.asked).toEqual(['r1']);
    for (const s of [ia, ib, iz]) s.hub.stop();
  });
});
