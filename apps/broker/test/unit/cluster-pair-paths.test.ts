import { FakeRelay } from '../support/fake-relay-directory';
import { ACCOUNT, B, cluster } from '../support/paths-cluster';

describe('pair paths across broker instances', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('relays a pair split across instances on a relay connected to the other one', async () => {
    const { bus, a, b, ia, ib, relayAtB, connect, of } = cluster();
    await connect(ia, a);
    await connect(ib, b);
    // A holds a device with the lower instance id: it decides. B's device asks; A hears it.
    ib.hub.pathMessage(b.id, { type: 'want-path', peerId: a.id });
    await jest.advanceTimersByTimeAsync(0);
    const [toA] = of(a, 'relay');
    const [toB] = of(b, 'relay');
    expect(toA).toMatchObject({ peerId: b.id, endpoint: '203.0.113.1:40000', relayName: 'r1' });
    expect(toB).toMatchObject({ peerId: a.id, allocationId: toA!.allocationId });
    // The allocation was made by B's relay, for A, over the bus; B's own hub decided nothing.
    expect(ib.local.asked).toEqual(['r1']);
    expect(ib.hub.pairCount).toBe(0);
    expect(ia.hub.pairCount).toBe(1);
    expect(bus.kinds).toEqual(
      expect.arrayContaining(['pair-input', 'relay-request', 'relay-reply', 'device-frame']),
    );
    // A's devices see the relay connected to B in their netmap.
    expect(of(a, 'netmap')[0]!.self.relays).toEqual([
      { id: relayAtB.id, name: 'r1', address: '203.0.113.1' },
    ]);
    ia.hub.stop();
    ib.hub.stop();
  });

  it('a path report from the other instance reaches the owner, and a release goes back to the relay', async () => {
    const { a, b, ia, ib, connect, of } = cluster();
    await connect(ia, a);
    await connect(ib, b);
    ia.hub.pathMessage(a.id, { type: 'want-path', peerId: b.id });
    await jest.advanceTimersByTimeAsync(0);
    const allocationId = of(a, 'relay')[0]!.allocationId;
    for (const [hub, from, peer] of [
      [ia.hub, a, b],
      [ib.hub, b, a],
    ] as const)
      hub.pathMessage(from.id, {
        type: 'path',
        peerId: peer.id,
        attemptId: 'local:1',
        result: 'direct',
        elapsedMs: 5,
      });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(of(b, 'relay-release')).toEqual([{ type: 'relay-release', peerId: a.id, allocationId }]);
    expect(ib.local.released).toEqual([allocationId]);
    ia.hub.stop();
    ib.hub.stop();
  });

  it('when the owner instance dies, the next one takes over and keeps the pair on its allocation', async () => {
    const { a, b, ia, ib, connect, offline, of, relayed } = cluster();
    const allocationId = await relayed();
    // Instance A dies: its lease is taken over and its device marked offline; B owns the account.
    ia.hub.stop();
    await offline(a);
    expect(ib.hub.pairCount).toBe(0);
    // The device reconnects to B and re-announces its relayed peer: the allocation is taken up.
    await connect(ib, a);
    ib.hub.pathMessage(a.id, { type: 'want-path', peerId: b.id, relayed: true });
    await jest.advanceTimersByTimeAsync(0);
    expect(ib.hub.pairCount).toBe(1);
    expect(of(a, 'relay').at(-1)!.allocationId).toBe(allocationId);
    expect(ib.local.released).toEqual([]);
    expect(ib.local.asked).toEqual(['r1']);
    ib.hub.stop();
  });

  it('a relay that moves to another instance keeps its pairs: the owner claims their allocations there', async () => {
    const { bus, a, b, ia, ib, relayAtB, of, relayed, instanceC } = cluster();
    const allocationId = await relayed();
    // Instance B dies; its relay reconnects to C (behind one proxy URL), reporting what it holds.
    const { local: localC, relays: relaysC } = instanceC();
    ib.hub.stop();
    await bus.publish({ kind: 'instance-gone', instance: B });
    const again = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    localC.adopt(again, ACCOUNT, [a.publicKey, b.publicKey], allocationId);
    localC.up(again);
    await jest.advanceTimersByTimeAsync(0);
    // A claimed it at C: C will not release it as unclaimed, and A's release goes to C.
    expect(localC.adopted).toEqual([]);
    expect(of(a, 'relay')).toHaveLength(1);
    ia.relays.release(allocationId);
    await jest.advanceTimersByTimeAsync(0);
    expect(localC.released).toEqual([allocationId]);
    relaysC.stop();
    ia.hub.stop();
  });

  it("a relay that leaves the owner's instance for another keeps its pairs: the owner claims them there", async () => {
    const { a, b, ia, ib, relayAtB, of, relayed } = cluster();
    // The relay is the owner's (A) this time: B's goes, one connects to A.
    ib.local.down(relayAtB);
    const relay = new FakeRelay('r2', '203.0.113.2');
    ia.local.up(relay);
    const allocationId = await relayed();
    expect(ia.local.held.has(allocationId)).toBe(true);
    // The proxy cut the relay's session; it reconnects to B, which adopts what it reports. A hears
    // of it at B, then its own entry's grace ends.
    relay.online = false;
    const again = Object.assign(new FakeRelay('r2', '203.0.113.2'), { id: relay.id });
    ib.local.adopt(again, ACCOUNT, [a.publicKey, b.publicKey], allocationId);
    ib.local.up(again);
    await jest.advanceTimersByTimeAsync(0);
    ia.local.down(relay);
    await jest.advanceTimersByTimeAsync(0);
    // A claimed it at B (B will not release it as unclaimed), the agents kept it, A's release goes to B.
    expect(ib.local.adopted).toEqual([]);
    expect(of(a, 'relay-release')).toEqual([]);
    expect(of(b, 'relay-release')).toEqual([]);
    ia.relays.release(allocationId);
    await jest.advanceTimersByTimeAsync(0);
    expect(ib.local.released).toEqual([allocationId]);
    ia.hub.stop();
    ib.hub.stop();
  });

  it("a relay that moves on from a live instance: that instance leaves the owner's allocations to the owner", async () => {
    const { bus, a, b, ia, ib, relayAtB, of, relayed, instanceC } = cluster();
    const allocationId = await relayed();
    // B stays up; its relay's session is cut and it reconnects to C, then B's grace for it ends.
    const { local: localC, relays: relaysC } = instanceC();
    const again = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    localC.adopt(again, ACCOUNT, [a.publicKey, b.publicKey], allocationId);
    const fromB: string[] = [];
    bus.subscribe((e) => {
      if (e.kind === 'relay-request' && e.from === B) fromB.push(e.request.op);
    });
    localC.up(again);
    await jest.advanceTimersByTimeAsync(0);
    ib.local.down(relayAtB);
    await jest.advanceTimersByTimeAsync(0);
    // A, the owner, claimed it at C; B asked nothing for it (a claim of its own could beat A's).
    expect(localC.adopted).toEqual([]);
    expect(fromB).toEqual([]);
    expect(of(a, 'relay-release')).toEqual([]);
    ia.relays.release(allocationId);
    await jest.advanceTimersByTimeAsync(0);
    expect(localC.released).toEqual([allocationId]);
    relaysC.stop();
    ia.hub.stop();
    ib.hub.stop();
  });

  it('a relay that comes back without the allocation: the agents are told, and a new want gets a new one', async () => {
    const { bus, a, b, ia, ib, relayAtB, of, relayed, instanceC } = cluster();
    const first = await relayed();
    const { local: localC, relays: relaysC } = instanceC();
    ib.hub.stop();
    await bus.publish({ kind: 'instance-gone', instance: B });
    localC.up(Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id }));
    await jest.advanceTimersByTimeAsync(0);
    expect(of(a, 'relay-release')).toEqual([{ type: 'relay-release', peerId: b.id, allocationId: first }]);
    // The agent still has packets for its peer: it asks again, and gets an allocation at C.
    ia.hub.pathMessage(a.id, { type: 'want-path', peerId: b.id, relayed: true });
    await jest.advanceTimersByTimeAsync(0);
    expect(localC.asked).toEqual(['r1']);
    expect(of(a, 'relay').at(-1)!.allocationId).not.toBe(first);
    relaysC.stop();
    ia.hub.stop();
  });

  it("a dead instance's relay is down only if it does not reappear at another instance", async () => {
    const { bus, ia, relayAtB } = cluster();
    const down: string[] = [];
    ia.relays.on('relay-down', (id) => down.push(id));
    const present = () =>
      bus.publish({
        kind: 'relay-present',
        instance: '00000000000c',
        relay: { id: relayAtB.id, name: 'r1', accountId: null, publicAddress: '203.0.113.1' },
        allocations: 1,
      });
    await bus.publish({ kind: 'instance-gone', instance: B });
    expect(ia.relays.relaysFor(ACCOUNT)).toEqual([]);
    await jest.advanceTimersByTimeAsync(5_000);
    await present(); // reconnected to a third instance in time: its pairs stay
    await jest.advanceTimersByTimeAsync(10_000);
    expect(down).toEqual([]);
    expect(ia.relays.relaysFor(ACCOUNT).map((r) => r.name)).toEqual(['r1']);
    await bus.publish({ kind: 'instance-gone', instance: '00000000000c' });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(down).toEqual([relayAtB.id]);
    ia.hub.stop();
  });

  it('an owner that moves hears from the others where their reflectors saw their devices', async () => {
    const { a, b, ia, ib, connect, of, observe } = cluster();
    // Both map endpoint-independently: a punch, once both were seen sending UDP.
    for (const d of [a, b]) d.mappingType = 'endpoint-independent';
    await connect(ib, b);
    observe(ib, b, '198.51.100.2:2222'); // B owns the account now: its own driver hears it
    await connect(ia, a); // A's id is lower: A owns it from here, and B tells A what it saw
    observe(ia, a, '192.0.2.1:1111');
    ia.hub.pathMessage(a.id, { type: 'want-path', peerId: b.id });
    await jest.advanceTimersByTimeAsync(100);
    expect(ia.hub.pairCount).toBe(1);
    expect(ib.hub.pairCount).toBe(0);
    expect(of(a, 'punch')).toHaveLength(1);
    expect(of(b, 'punch')[0]!.candidates[0]!.endpoint).toBe('192.0.2.1:1111');
    expect(of(a, 'punch')[0]!.candidates[0]!.endpoint).toBe('198.51.100.2:2222');
    ia.hub.stop();
    ib.hub.stop();
  });

  it("another instance's shared relay reflector classifies NATs here: its observations arrive", async () => {
    const { bus, a, ia } = cluster();
    const reflector = { publicKey: a.publicKey, endpoint: '203.0.113.9:41641' };
    const relayId = '00000000-0000-4000-8000-0000000000ff';
    await bus.publish({
      kind: 'relay-present',
      instance: '00000000000c',
      relay: { id: relayId, name: 'r9', accountId: null, publicAddress: '203.0.113.9', reflector },
      allocations: 0,
    });
    expect(ia.relays.sharedReflector()).toEqual({ relayId, reflector });
    const seen: string[] = [];
    ia.relays.on('observed', (id, key, endpoint) => seen.push(`${id} ${key} ${endpoint}`));
    const observed = { relayId, publicKey: a.publicKey, endpoint: '192.0.2.1:3333' };
    await bus.publish({ kind: 'relay-observed', instance: '00000000000c', ...observed });
    expect(seen).toEqual([`${relayId} ${a.publicKey} 192.0.2.1:3333`]);
    ia.hub.stop();
  });
});
