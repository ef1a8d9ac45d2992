import type { PathReportMessage } from '@trellis/proto';
import { FakeRelay, FakeRelayDirectory } from '../support/fake-relay-directory';
import { A, ACCOUNT, B, claimsOn, cluster, Z } from '../support/paths-cluster';

/** The cluster's pair relayed (owner A, relay at B), and both agents report they are on it. */
async function relayedOnBothSides(k: ReturnType<typeof cluster>): Promise<string> {
  const allocationId = await k.relayed();
  k.ia.hub.pathMessage(k.a.id, relayReport(k.b.id));
  k.ib.hub.pathMessage(k.b.id, relayReport(k.a.id));
  return allocationId;
}

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
    const k = cluster();
    const { bus, a, b, ia, ib, connect, of, instance, device } = k;
    const allocationId = await relayedOnBothSides(k);
    const claims = claimsOn(bus);
    // A device connects to Z, whose id is lower: Z owns the account from here.
    const iz = instance(Z, new FakeRelayDirectory());
    await connect(iz, device('c', '100.64.0.3', '203.0.113.30:3333'));
    await jest.advanceTimersByTimeAsync(50);
    expect(ia.hub.pairCount).toBe(0);
    expect(iz.hub.pairCount).toBe(1);
    // Z claimed at B the allocation B's relay holds, no new one was made, and both agents were
    // told that same relay and port again.
    expect(claims).toEqual([`${Z}→${B}`]);
    expect(ib.local.asked).toEqual(['r1']);
    expect(ib.local.released).toEqual([]);
    for (const d of [a, b])
      expect(of(d, 'relay').map((m) => m.allocationId)).toEqual([allocationId, allocationId]);
    for (const s of [ia, ib, iz]) s.hub.stop();
  });

  it('an owner dropped while its claim is on its way leaves the allocation to the next one', async () => {
    const k = cluster();
    const { a, ia, ib, connect, offline, of, instance, device } = k;
    const allocationId = await relayedOnBothSides(k);
    // B answers claims 20 ms late (a slow bus, or a wait for relays to rejoin after a restart).
    const claimHeld = ib.local.claimHeld.bind(ib.local);
    ib.local.claimHeld = async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return claimHeld(...args);
    };
    const iz = instance(Z, new FakeRelayDirectory());
    const c = device('c', '100.64.0.3', '203.0.113.30:3333');
    await connect(iz, c);
    await jest.advanceTimersByTimeAsync(0);
    // c goes before B answered Z: A owns the account again and claims the same allocation.
    await offline(c);
    await jest.advanceTimersByTimeAsync(100);
    expect(iz.hub.pairCount).toBe(0);
    expect(ia.hub.pairCount).toBe(1);
    expect(ib.local.released).toEqual([]);
    expect(of(a, 'relay').at(-1)!.allocationId).toBe(allocationId);
    expect(of(a, 'relay-release')).toEqual([]);
    for (const s of [ia, ib, iz]) s.hub.stop();
  });

  it('a former owner that follows the relay does not release the allocation the owner moved the pair to', async () => {
    const k = cluster();
    const { a, b, ia, ib, relayAtB, connect, instance, instanceC, device } = k;
    const first = await relayedOnBothSides(k);
    const iz = instance(Z, new FakeRelayDirectory());
    await connect(iz, device('c', '100.64.0.3', '203.0.113.30:3333'));
    await jest.advanceTimersByTimeAsync(50);
    // The relay moves from B to C; Z (and A, which allocated it) claim the allocation there.
    const { local: localC, relays: relaysC } = instanceC();
    const keys: [string, string] = [a.publicKey, b.publicKey];
    const atC = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    localC.adopt(atC, ACCOUNT, keys, first);
    localC.up(atC);
    await jest.advanceTimersByTimeAsync(0);
    ib.local.down(relayAtB);
    await jest.advanceTimersByTimeAsync(0);
    // Z moves the pair to a new allocation on the same relay, then the relay moves back to B.
    iz.relays.release(first);
    const second = (await iz.relays.allocate(atC.id, ACCOUNT, keys, 600_000)).allocationId;
    const atB = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    ib.local.adopt(atB, ACCOUNT, keys, second);
    ib.local.up(atB);
    await jest.advanceTimersByTimeAsync(0);
    localC.down(atC);
    await jest.advanceTimersByTimeAsync(0);
    // A's claim for its old allocation matched the pair's keys at B: it got `second`, and kept off it.
    expect(ib.local.released).toEqual([]);
    relaysC.stop();
    for (const s of [ia, ib, iz]) s.hub.stop();
  });

  it('an announcement of an owner that another instance has replaced by then is not answered', async () => {
    const { bus, a, b, ia, ib, connect, offline, relayed, instance, device } = cluster();
    await relayed();
    ib.hub.pathMessage(b.id, relayReport(a.id));
    const iz = instance(Z, new FakeRelayDirectory());
    const c = device('c', '100.64.0.3', '203.0.113.30:3333');
    await connect(iz, c);
    await offline(c); // A owns the account again before B reads Z's announcement (again here)
    await jest.advanceTimersByTimeAsync(50); // B answered A's announcement
    const inputs: string[] = [];
    bus.subscribe((e) => {
      if (e.kind === 'pair-input') inputs.push(e.input.kind);
    });
    await bus.publish({ kind: 'paths-owner', accountId: ACCOUNT, instance: Z });
    await jest.advanceTimersByTimeAsync(0);
    expect(inputs).toEqual([]);
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
    const k = cluster();
    const { a, b, ia, ib, connect, of, instance, device } = k;
    const allocationId = await relayedOnBothSides(k);
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
