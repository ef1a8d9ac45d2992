import { FakeRelay, FakeRelayDirectory } from '../support/fake-relay-directory';
import { A, ACCOUNT, B, C, claimsOn, cluster, Z } from '../support/paths-cluster';

/**
 * An instance whose event bus lost its connection (PostgreSQL restarted, a network blip) missed
 * what the others published meanwhile, and what it published was lost. Once the bus is back and its
 * netmaps are reloaded, the account's pair paths owner hears again about every relayed pair.
 */
/** The cluster, and the relays A takes down. */
function watchingRelayDowns() {
  const k = cluster();
  const down: string[] = [];
  k.ia.relays.on('relay-down', (relayId) => down.push(relayId));
  return { ...k, down };
}

describe('pair paths after an instance’s event bus was away', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('an owner’s announcement missed meanwhile is answered once the bus is back', async () => {
    const k = cluster();
    const { bus, a, b, ia, ib, connect, of, instance, device } = k;
    const allocationId = await k.relayed();
    // Only b's agent said it is on the relay: only B can tell a new owner about the pair.
    ib.hub.pathMessage(b.id, {
      type: 'path',
      peerId: a.id,
      attemptId: `relay:${allocationId}`,
      result: 'relay',
      elapsedMs: 3,
    });
    const claims = claimsOn(bus);
    bus.away(B);
    const iz = instance(Z, new FakeRelayDirectory());
    await connect(iz, device('c', '100.64.0.3', '203.0.113.30:3333'));
    await jest.advanceTimersByTimeAsync(50);
    // Z owns the account and knows neither the pair nor B's relay.
    expect(ia.hub.pairCount).toBe(0);
    expect(iz.hub.pairCount).toBe(0);
    bus.back(B);
    await jest.advanceTimersByTimeAsync(50);
    // B announced its relay again and sent Z b's relayed peer: Z claimed the same allocation.
    expect(iz.hub.pairCount).toBe(1);
    expect(claims).toEqual([`${Z}→${B}`]);
    expect(ib.local.asked).toEqual(['r1']);
    expect(ib.local.released).toEqual([]);
    for (const d of [a, b]) expect(of(d, 'relay').at(-1)!.allocationId).toBe(allocationId);
    for (const s of [ia, ib, iz]) s.hub.stop();
  });

  it('an owner whose bus was away announces itself again and gets what was forwarded to it meanwhile', async () => {
    const { bus, a, b, ia, ib, connect, of } = cluster();
    await connect(ia, a);
    await connect(ib, b);
    bus.away(A);
    // b's agent comes back on its relay to a: B forwards the want to A, which does not get it.
    ib.hub.pathMessage(b.id, { type: 'want-path', peerId: a.id, relayed: true });
    await jest.advanceTimersByTimeAsync(50);
    expect(ia.hub.pairCount).toBe(0);
    bus.back(A);
    await jest.advanceTimersByTimeAsync(50);
    expect(ia.hub.pairCount).toBe(1);
    expect(ib.local.asked).toEqual(['r1']);
    const [toA] = of(a, 'relay');
    expect(toA).toBeDefined();
    expect(of(b, 'relay').map((m) => m.allocationId)).toEqual([toA!.allocationId]);
    for (const s of [ia, ib]) s.hub.stop();
  });

  it('a moved relay announced again before the claim of it is answered is claimed once, and nothing released', async () => {
    const k = cluster();
    const { bus, a, b, ia, ib, relayAtB, instanceC } = k;
    const allocationId = await k.relayed();
    const claims = claimsOn(bus);
    // The relay moves to C, which answers claims 20 ms late.
    const { local: localC, relays: relaysC } = instanceC();
    const claimHeld = localC.claimHeld.bind(localC);
    localC.claimHeld = async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return claimHeld(...args);
    };
    const atC = Object.assign(new FakeRelay('r1', '203.0.113.1'), { id: relayAtB.id });
    localC.adopt(atC, ACCOUNT, [a.publicKey, b.publicKey], allocationId);
    localC.up(atC);
    await jest.advanceTimersByTimeAsync(0);
    // Another instance's bus came back: it asks for every relay, and C announces this one again.
    await bus.publish({ kind: 'relay-sync', instance: B });
    await jest.advanceTimersByTimeAsync(100);
    expect(claims).toEqual([`${A}→${C}`]);
    expect(localC.released).toEqual([]);
    relaysC.stop();
    for (const s of [ia, ib]) s.hub.stop();
  });

  it('a relay that left its instance while the bus was away is down once it is not announced again', async () => {
    const { bus, ia, ib, relayAtB, down } = watchingRelayDowns();
    bus.away(A);
    ib.local.down(relayAtB); // B's relay-gone does not reach A
    await jest.advanceTimersByTimeAsync(0);
    bus.back(A);
    // A minute for the others (reconnecting too, maybe) to announce theirs again, from the last
    // time the bus came back.
    await jest.advanceTimersByTimeAsync(30_000);
    bus.away(A);
    bus.back(A);
    await jest.advanceTimersByTimeAsync(59_000);
    expect(down).toEqual([]);
    expect(ia.relays.relaysFor(ACCOUNT).map((r) => r.id)).toEqual([relayAtB.id]);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(down).toEqual([relayAtB.id]);
    expect(ia.relays.relaysFor(ACCOUNT)).toEqual([]);
    for (const s of [ia, ib]) s.hub.stop();
  });

  it('a relay announced again after the bus came back stays up', async () => {
    const { bus, ia, ib, relayAtB, down } = watchingRelayDowns();
    bus.away(A);
    bus.back(A);
    await jest.advanceTimersByTimeAsync(120_000);
    expect(down).toEqual([]);
    expect(ia.relays.relaysFor(ACCOUNT).map((r) => r.id)).toEqual([relayAtB.id]);
    for (const s of [ia, ib]) s.hub.stop();
  });
});
