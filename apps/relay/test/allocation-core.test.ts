import { sealTransport } from '@trellis/noise';
import { TokenBucket } from '@trellis/reflector';
import {
  AllocationCore,
  type AllocationCoreOptions,
  DEFAULT_ALLOCATION_LIMITS,
  type SideBinding,
} from '../src/allocation/allocation-core';
import { forgedInitiation, WireGuardPair } from './support/wireguard-pair';

const A = { address: '198.51.100.1', port: 51820 };
const B = { address: '203.0.113.2', port: 41000 };
const EVIL = { address: '192.0.2.66', port: 666 };

function scenario(overrides: Partial<AllocationCoreOptions> = {}) {
  const pair = new WireGuardPair();
  const clock = { t: 1_000_000 };
  const bound: Array<[number, SideBinding]> = [];
  const core = new AllocationCore({
    publicKeys: pair.keys,
    idleTimeoutMs: 60_000,
    now: () => clock.t,
    onBound: (side, binding) => bound.push([side, binding]),
    ...overrides,
  });
  const udp = (from: { address: string; port: number }, packet: Uint8Array) =>
    core.receive('udp', from.address, from.port, packet);
  const hs = pair.handshake();
  return { pair, clock, bound, core, udp, hs };
}

/** A bound pair: a's initiation from A, b's response from B. */
function boundScenario(overrides: Partial<AllocationCoreOptions> = {}) {
  const s = scenario(overrides);
  expect(s.udp(A, s.hs.initiation)).toBe(-1); // a bound, b not yet
  expect(s.udp(B, s.hs.response)).toBe(0);
  return s;
}

describe('AllocationCore binding by mac1', () => {
  it('binds the sender of a handshake to its source and forwards once both sides are bound', () => {
    const s = scenario();
    expect(s.udp(A, s.hs.initiation)).toBe(-1);
    expect(s.core.drops['peer-unbound']).toBe(1);
    expect(s.bound).toEqual([[0, { transport: 'udp', ...A }]]);
    expect(s.udp(B, s.hs.response)).toBe(0);
    expect(s.bound[1]).toEqual([1, { transport: 'udp', ...B }]);
    expect(s.core.binding(1)).toEqual({ transport: 'udp', ...B });

    const fromA = sealTransport(s.hs.a, 0n, new Uint8Array(100));
    const fromB = sealTransport(s.hs.b, 0n, new Uint8Array(1400));
    expect(s.udp(A, fromA)).toBe(1);
    expect(s.udp(B, fromB)).toBe(0);
    expect(s.core.forwarded.udp).toEqual({ packets: 3, bytes: 92 + fromA.length + fromB.length });
    expect(s.core.binds).toBe(2);
  });

  it('drops by reason and never forwards what is not authenticated', () => {
    const s = boundScenario();
    const transport = sealTransport(s.hs.a, 1n);
    expect(s.udp(EVIL, transport)).toBe(-1);
    expect(s.core.drops['unbound-source']).toBe(1);
    expect(s.udp(A, transport.subarray(0, 31))).toBe(-1);
    expect(s.core.drops.malformed).toBe(1);
    const badMac = s.pair.initiation('a');
    badMac[10]! ^= 1;
    expect(s.udp(EVIL, badMac)).toBe(-1);
    expect(s.core.drops['bad-mac1']).toBe(1);
    // Right length and type, mac1 keyed to neither side.
    expect(s.udp(EVIL, forgedInitiation(new Uint8Array(32).fill(7)))).toBe(-1);
    expect(s.core.drops['bad-mac1']).toBe(2);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...A });
  });

  it('forwards cookie replies only between bound sides', () => {
    const s = scenario();
    const cookie = new Uint8Array(64);
    cookie[0] = 3;
    expect(s.udp(A, cookie)).toBe(-1);
    expect(s.core.drops['unbound-source']).toBe(1);
    s.udp(A, s.hs.initiation);
    expect(s.udp(A, cookie)).toBe(-1);
    expect(s.core.drops['peer-unbound']).toBe(2);
    s.udp(B, s.hs.response);
    expect(s.udp(B, cookie)).toBe(0);
    expect(s.udp(B, cookie.subarray(0, 63))).toBe(-1);
  });

  it('moves a side only on a new valid handshake (roaming), not on transport packets', () => {
    const s = boundScenario();
    const roamed = { address: '198.51.100.9', port: 3333 };
    expect(s.udp(roamed, sealTransport(s.hs.a, 2n))).toBe(-1);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...A });
    expect(s.udp(roamed, s.pair.initiation('a'))).toBe(1);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...roamed });
    expect(s.bound.at(-1)).toEqual([0, { transport: 'udp', ...roamed }]);
    expect(s.udp(A, sealTransport(s.hs.a, 3n))).toBe(-1);
    expect(s.udp(roamed, sealTransport(s.hs.a, 3n))).toBe(1);
  });

  it('refuses a replayed handshake from another address and keeps the binding', () => {
    const s = boundScenario();
    const initiation = s.pair.initiation('a');
    expect(s.udp(A, initiation)).toBe(1);
    expect(s.udp(EVIL, initiation)).toBe(-1);
    expect(s.core.drops.replay).toBe(1);
    // mac2 is not covered by mac1: changing it does not make a replay new.
    const remac2 = initiation.slice();
    remac2[140]! ^= 0xff;
    expect(s.udp(EVIL, remac2)).toBe(-1);
    expect(s.core.drops.replay).toBe(2);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...A });
    // The same packet again from the bound source is a harmless duplicate.
    expect(s.udp(A, initiation)).toBe(1);
  });

  it('bounds how fast forged handshakes can move a side', () => {
    const limits = { ...DEFAULT_ALLOCATION_LIMITS, rebinds: { capacity: 2, refillPerSecond: 0.1 } };
    const s = boundScenario({ limits });
    const moves = [];
    for (let i = 0; i < 5; i++) {
      moves.push(s.udp({ address: EVIL.address, port: 1000 + i }, forgedInitiation(s.pair.b.publicKey)));
    }
    // A forged initiation has a valid mac1: it moves side a (the disruption the model accepts), twice.
    expect(moves).toEqual([1, 1, -1, -1, -1]);
    expect(s.core.drops['rebind-limited']).toBe(3);
    s.clock.t += 10_000;
    expect(s.udp(A, s.pair.initiation('a'))).toBe(1);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...A });
  });

  it('refuses a handshake claiming one side from the address of the other', () => {
    const s = boundScenario();
    expect(s.udp(B, s.pair.initiation('a'))).toBe(-1);
    expect(s.core.drops['side-conflict']).toBe(1);
    expect(s.core.binding(0)).toEqual({ transport: 'udp', ...A });
  });

  it('restores bindings known from before without a handshake and without an event', () => {
    const s = scenario({
      initialBindings: [
        { transport: 'udp', ...A },
        { transport: 'udp', ...B },
      ],
    });
    expect(s.udp(A, sealTransport(s.hs.a, 0n))).toBe(1);
    expect(s.bound).toEqual([]);
  });

  it('forgets a binding whose transport went away', () => {
    const s = scenario();
    s.core.receive('tcp', 'ws-1', 0, s.hs.initiation);
    s.udp(B, s.hs.response);
    expect(s.core.binding(0)).toEqual({ transport: 'tcp', address: 'ws-1', port: 0 });
    expect(s.core.receive('tcp', 'ws-1', 0, sealTransport(s.hs.a, 0n))).toBe(1);
    expect(s.udp(B, sealTransport(s.hs.b, 0n))).toBe(0);
    expect(s.core.forwarded.tcp.packets).toBe(2); // the response and this packet
    s.core.unbind('tcp', 'ws-1', 0);
    expect(s.udp(B, sealTransport(s.hs.b, 1n))).toBe(-1);
    expect(s.core.drops['peer-unbound']).toBe(2);
  });
});

describe('AllocationCore expiry and budgets', () => {
  it('is idle once nothing was forwarded for idleTimeoutMs', () => {
    const s = boundScenario({ idleTimeoutMs: 30_000 });
    s.clock.t += 29_999;
    expect(s.core.isIdle(s.clock.t)).toBe(false);
    s.udp(A, sealTransport(s.hs.a, 0n));
    s.clock.t += 29_999;
    expect(s.core.isIdle(s.clock.t)).toBe(false);
    // Dropped packets do not keep an allocation alive.
    s.udp(EVIL, sealTransport(s.hs.a, 1n));
    s.clock.t += 1;
    expect(s.core.isIdle(s.clock.t)).toBe(true);
  });

  it('limits packets per allocation', () => {
    const limits = { ...DEFAULT_ALLOCATION_LIMITS, packets: { capacity: 10, refillPerSecond: 100 } };
    const s = boundScenario({ limits });
    const packet = sealTransport(s.hs.a, 0n);
    let forwarded = 0;
    for (let i = 0; i < 50; i++) if (s.udp(A, packet) === 1) forwarded++;
    expect(forwarded).toBe(8); // 10 minus the two handshake packets
    expect(s.core.drops['rate-limited']).toBe(42);
    s.clock.t += 100; // 10 tokens
    forwarded = 0;
    for (let i = 0; i < 50; i++) if (s.udp(A, packet) === 1) forwarded++;
    expect(forwarded).toBe(10);
  });

  it('limits packets per account across allocations', () => {
    const clock = { t: 0 };
    const account = new TokenBucket({ capacity: 6, refillPerSecond: 1 }, 0);
    const first = boundScenario({ now: () => clock.t, accountBucket: account });
    const second = boundScenario({ now: () => clock.t, accountBucket: account });
    expect(first.udp(A, sealTransport(first.hs.a, 0n))).toBe(1);
    expect(second.udp(A, sealTransport(second.hs.a, 0n))).toBe(1);
    expect(second.udp(A, sealTransport(second.hs.a, 1n))).toBe(-1);
    expect(first.core.drops['rate-limited'] + second.core.drops['rate-limited']).toBe(1);
  });

  it('limits handshakes (each costs a mac1 computation) separately', () => {
    const limits = { ...DEFAULT_ALLOCATION_LIMITS, handshakes: { capacity: 3, refillPerSecond: 1 } };
    const s = scenario({ limits });
    const junk = s.pair.initiation('a');
    junk[100]! ^= 1;
    for (let i = 0; i < 10; i++) s.udp(EVIL, junk);
    expect(s.core.drops['bad-mac1']).toBe(3);
    expect(s.core.drops['rate-limited']).toBe(7);
    expect(s.udp(A, s.hs.initiation)).toBe(-1);
    expect(s.core.drops['rate-limited']).toBe(8);
    expect(s.core.binding(0)).toBeNull();
  });

  it('a flood of junk handshakes does not stop the bound sides rekeying', () => {
    const limits = { ...DEFAULT_ALLOCATION_LIMITS, handshakes: { capacity: 3, refillPerSecond: 1 } };
    const s = boundScenario({ limits });
    const junk = s.pair.initiation('a');
    junk[100]! ^= 1;
    for (let i = 0; i < 100; i++) s.udp(EVIL, junk);
    expect(s.core.drops['rate-limited']).toBeGreaterThan(90);
    // The devices' next handshake (a rekey) from their bound addresses still goes through.
    const rekey = s.pair.handshake();
    expect(s.udp(A, rekey.initiation)).toBe(1);
    expect(s.udp(B, rekey.response)).toBe(0);
  });
});
