import type { Candidate } from '@trellis/proto';
import type { PairDevice } from '../../../src/pair-paths/pair-types';
import { candidatesFor, punchable } from '../../../src/pair-paths/punch-plan';
import { pairPaths } from '../../support/pair-paths-harness';

const KEY_A = `${'A'.repeat(43)}=`;
const KEY_B = `${'B'.repeat(43)}=`;

function cand(endpoint: string, kind: Candidate['kind'], priority: number): Candidate {
  return { endpoint, kind, priority };
}

const a: PairDevice = {
  id: 'a',
  publicKey: KEY_A,
  candidates: [cand('10.1.0.10:51820', 'lan', 4000), cand('192.0.2.11:51820', 'reflexive', 2000)],
  mappingType: 'endpoint-independent',
};
const b: PairDevice = {
  id: 'b',
  publicKey: KEY_B,
  candidates: [cand('10.2.0.10:51820', 'lan', 4000), cand('192.0.2.12:40000', 'reflexive', 2000)],
  mappingType: 'endpoint-dependent',
};

describe('punch plan', () => {
  it('sends LAN candidates only to a device behind the same public address', () => {
    expect(candidatesFor(a, b).map((c) => c.kind)).toEqual(['reflexive']);
    const a2 = {
      ...a,
      candidates: [cand('10.1.0.11:51820', 'lan', 4000), cand('192.0.2.11:3333', 'reflexive', 2000)],
    };
    expect(candidatesFor(a, a2).map((c) => c.endpoint)).toEqual(['10.1.0.11:51820', '192.0.2.11:3333']);
  });

  it('sends one public candidate per address of a symmetric NAT (its ports are per destination)', () => {
    const sym: PairDevice = {
      ...b,
      candidates: [
        cand('192.0.2.12:40000', 'reflexive', 2032),
        cand('192.0.2.12:40001', 'reflexive', 2031),
        cand('192.0.2.12:51820', 'observed', 1000),
      ],
    };
    expect(candidatesFor(a, sym).map((c) => c.endpoint)).toEqual(['192.0.2.12:40000']);
    expect(candidatesFor(sym, a).map((c) => c.endpoint)).toEqual(['192.0.2.11:51820']);
  });

  it('skips two NATs that both map per destination, unless a port is forwarded or they share an address', () => {
    const sym = { ...b, candidates: [cand('192.0.2.13:1111', 'reflexive', 2000)] };
    expect(punchable(a, b)).toBe(true);
    expect(punchable(b, sym)).toBe(false);
    expect(
      punchable(b, { ...sym, candidates: [...sym.candidates, cand('192.0.2.13:51820', 'portmapped', 3000)] }),
    ).toBe(true);
    expect(punchable(b, { ...sym, candidates: [cand('192.0.2.12:2222', 'reflexive', 2000)] })).toBe(true);
  });

  it('with reflectors running, waits until both sides have a reflexive candidate', () => {
    const noUdp = { ...a, candidates: [cand('192.0.2.20:51820', 'observed', 1000)] };
    expect(punchable(a, noUdp, false)).toBe(true);
    expect(punchable(a, noUdp, true)).toBe(false);
    expect(punchable(a, b, true)).toBe(true);
  });
});

describe('pair paths: punching', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  function setup(
    extra: {
      controlRtt?: (id: string) => number | null;
      seenSince?: (publicKey: string, since: number) => readonly string[] | null;
      freshWaitMs?: number;
    } = {},
  ) {
    const h = pairPaths({
      devices: [a, b],
      relays: false,
      ...(extra.controlRtt ? { controlRtt: extra.controlRtt } : {}),
      ...(extra.seenSince ? { seenSince: extra.seenSince } : {}),
      timings: extra.freshWaitMs ? { freshWaitMs: extra.freshWaitMs } : {},
    });
    return { ...h, c: h, sent: h.punches };
  }

  it('punches both sides with the other one’s candidates and one start time once a side wants a path', () => {
    const { c, sent } = setup();
    c.online('a');
    jest.advanceTimersByTime(1000);
    c.online('b');
    jest.advanceTimersByTime(1000);
    expect(sent).toEqual([]); // nobody wants a path yet
    c.want('b', 'a');
    jest.advanceTimersByTime(99);
    expect(sent).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(sent.map((s) => s.to).sort()).toEqual(['a', 'b']);
    const toA = sent.find((s) => s.to === 'a')!.msg;
    const toB = sent.find((s) => s.to === 'b')!.msg;
    expect(toA).toMatchObject({ peerId: 'b', peerPublicKey: KEY_B, startAt: Date.now() + 300 });
    expect(toA.candidates.map((x) => x.endpoint)).toEqual(['192.0.2.12:40000']);
    expect(toB.candidates.map((x) => x.endpoint)).toEqual(['192.0.2.11:51820']);
    expect(toA.attemptId).toBe(toB.attemptId);
    expect(toA.startAt).toBe(toB.startAt);
    // b is behind the symmetric NAT: it leads (only its packets can open the way).
    expect([toA.leader, toB.leader]).toEqual([false, true]);
  });

  it('does not repeat an unchanged punch, retries a failed one with backoff, stops after success', () => {
    const { c, devices, sent } = setup();
    c.online('a');
    c.online('b');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(2);
    c.changed('a');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(2); // same candidates: nothing new to try

    const first = sent[0]!.msg.attemptId;
    c.report('a', { type: 'path', peerId: 'b', attemptId: first, result: 'failed', elapsedMs: 1500 });
    c.report('b', { type: 'path', peerId: 'a', attemptId: first, result: 'failed', elapsedMs: 1500 });
    // The first failure is retried at once (after the settle time), the next ones with backoff.
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(4);
    const second = sent[2]!.msg.attemptId;
    expect(second).not.toBe(first);
    c.report('a', { type: 'path', peerId: 'b', attemptId: second, result: 'failed', elapsedMs: 1500 });
    jest.advanceTimersByTime(4999);
    expect(sent).toHaveLength(4);
    jest.advanceTimersByTime(1);
    expect(sent).toHaveLength(6);
    const third = sent[4]!.msg.attemptId;
    c.report('b', { type: 'path', peerId: 'a', attemptId: third, result: 'direct', elapsedMs: 20 });
    c.report('a', { type: 'path', peerId: 'b', attemptId: third, result: 'direct', elapsedMs: 25 });
    jest.advanceTimersByTime(600_000);
    expect(sent).toHaveLength(6);

    // A working path is done: new candidates do not tear it down (WireGuard roaming keeps it),
    // nor does a reconnect …
    devices.set('b', { ...b, candidates: [cand('192.0.2.99:40000', 'reflexive', 2000)] });
    c.changed('b');
    c.online('b');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(6);
    // … until an agent wants the path again: punched from scratch, with the new candidates.
    c.want('b', 'a');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(8);
    expect(sent[6]!.msg.candidates.concat(sent[7]!.msg.candidates).map((x) => x.endpoint)).toContain(
      '192.0.2.99:40000',
    );
  });

  it('a failure on one side after the other reported direct still retries the pair', () => {
    const { c, sent } = setup();
    c.online('b');
    c.online('a');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    const id = sent[0]!.msg.attemptId;
    c.report('b', { type: 'path', peerId: 'a', attemptId: id, result: 'direct', elapsedMs: 40 });
    c.report('a', { type: 'path', peerId: 'b', attemptId: id, result: 'failed', elapsedMs: 4500 });
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(4);
    c.driver.dispose();
  });

  it('one side believing in a path is not enough: the other side’s own failed attempt brings a punch', () => {
    const { c, sent } = setup();
    c.online('b');
    c.online('a');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    c.report('b', {
      type: 'path',
      peerId: 'a',
      attemptId: sent[0]!.msg.attemptId,
      result: 'direct',
      elapsedMs: 9,
    });
    c.report('b', { type: 'path', peerId: 'a', attemptId: 'local:1', result: 'direct', elapsedMs: 9 });
    c.report('a', { type: 'path', peerId: 'b', attemptId: 'local:2', result: 'failed', elapsedMs: 3000 });
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(4);
    c.driver.dispose();
  });

  it('a direct pair is forgotten: later `relay` reports and new candidates punch nothing, a failure does', () => {
    const { c, devices, sent } = setup();
    c.online('b');
    c.online('a');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    const id = sent[0]!.msg.attemptId;
    c.report('a', { type: 'path', peerId: 'b', attemptId: id, result: 'direct', elapsedMs: 9 });
    c.report('b', { type: 'path', peerId: 'a', attemptId: id, result: 'direct', elapsedMs: 9 });
    c.report('b', { type: 'path', peerId: 'a', attemptId: 'local:3', result: 'relay', elapsedMs: 30 });
    jest.advanceTimersByTime(600_000);
    expect(sent).toHaveLength(2);
    devices.set('b', { ...b, candidates: [cand('192.0.2.99:40000', 'reflexive', 2000)] });
    c.changed('b');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(2);
    expect(c.driver.pairCount).toBe(0);
    // The path died on one side: punched again, with the new candidates.
    c.report('a', { type: 'path', peerId: 'b', attemptId: 'local:4', result: 'failed', elapsedMs: 3000 });
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(4);
    expect(sent[2]!.msg.candidates.map((x) => x.endpoint)).toEqual(['192.0.2.99:40000']);
    c.driver.dispose();
  });

  it('ignores reports from devices outside the attempt and forgets pairs whose device left', () => {
    const { c, sent } = setup();
    c.online('b');
    c.online('a');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    const id = sent[0]!.msg.attemptId;
    c.report('x', { type: 'path', peerId: 'a', attemptId: id, result: 'failed', elapsedMs: 1 });
    jest.advanceTimersByTime(60_000);
    expect(sent).toHaveLength(2);
    c.offline('b');
    c.changed('a');
    jest.advanceTimersByTime(60_000);
    expect(sent).toHaveLength(2);
    c.driver.dispose();
  });

  it('starts a punch the slower control round trip plus a margin ahead, capped by startDelayMs', () => {
    const rtt = new Map([
      ['a', 12.4],
      ['b', 40],
    ]);
    const { c, sent } = setup({ controlRtt: (id) => rtt.get(id) ?? null });
    c.online('b');
    c.online('a');
    c.want('a', 'b');
    jest.advanceTimersByTime(100);
    expect(sent[0]!.msg.startAt).toBe(Date.now() + 40 + 25);
    rtt.set('b', 2000);
    c.report('a', {
      type: 'path',
      peerId: 'b',
      attemptId: sent[0]!.msg.attemptId,
      result: 'failed',
      elapsedMs: 1,
    });
    jest.advanceTimersByTime(100);
    expect(sent[2]!.msg.startAt).toBe(Date.now() + 300);
    rtt.delete('a'); // unknown: the default
    c.online('b');
    jest.advanceTimersByTime(100);
    expect(sent[4]!.msg.startAt).toBe(Date.now() + 300);
    c.driver.dispose();
  });

  it('after a reconnect waits for reflexive addresses seen since; with none after freshWaitMs it does not punch', () => {
    const seen = new Map<string, { at: number; endpoint: string }>();
    const { c, devices, sent } = setup({
      freshWaitMs: 2000,
      seenSince: (key, since) => {
        const s = seen.get(key);
        return s && s.at >= since ? [s.endpoint] : null;
      },
    });
    c.online('a');
    c.online('b');
    c.want('a', 'b');
    jest.advanceTimersByTime(500);
    expect(sent).toEqual([]); // the netmap's reflexive addresses are from before
    // a's reflector sees it where the netmap already has it: fresh at once.
    seen.set(KEY_A, { at: Date.now(), endpoint: '192.0.2.11:51820' });
    c.observed('a');
    jest.advanceTimersByTime(500);
    expect(sent).toEqual([]);
    // b's new port: seen, but not fresh until the netmap carries it.
    seen.set(KEY_B, { at: Date.now(), endpoint: '192.0.2.12:40001' });
    c.observed('b');
    jest.advanceTimersByTime(200);
    expect(sent).toEqual([]);
    devices.set('b', { ...b, candidates: [cand('192.0.2.12:40001', 'reflexive', 2000)] });
    c.changed('b');
    jest.advanceTimersByTime(100);
    expect(sent.find((s) => s.to === 'a')!.msg.candidates.map((x) => x.endpoint)).toEqual([
      '192.0.2.12:40001',
    ]);

    // A device its reflectors do not see since it came online sends no UDP: no punch (the relay's
    // case), until an observation arrives after all.
    let seenQuiet: string[] | null = null;
    const quiet = setup({
      freshWaitMs: 2000,
      seenSince: (key) => (key === KEY_A ? seenQuiet : ['192.0.2.12:40000']),
    });
    quiet.c.online('a');
    quiet.c.online('b');
    quiet.c.want('a', 'b');
    quiet.c.observed('b');
    jest.advanceTimersByTime(10_000);
    expect(quiet.sent).toEqual([]);
    seenQuiet = ['192.0.2.11:51820'];
    quiet.c.observed('a');
    jest.advanceTimersByTime(100);
    expect(quiet.sent).toHaveLength(2);
    c.driver.dispose();
    quiet.c.driver.dispose();
  });

  it('counts a reflexive address listed as port-mapped (a 1:1 gateway mapping) as fresh', () => {
    const mapped: PairDevice = { ...a, candidates: [cand('192.0.2.11:51820', 'portmapped', 3000)] };
    const { c, devices, sent } = setup({
      freshWaitMs: 2000,
      seenSince: (key) => (key === KEY_A ? ['192.0.2.11:51820'] : ['192.0.2.12:40000']),
    });
    devices.set('a', mapped);
    c.online('a');
    c.online('b');
    c.want('a', 'b');
    c.observed('a');
    c.observed('b');
    jest.advanceTimersByTime(100);
    expect(sent).toHaveLength(2);
    c.driver.dispose();
  });
});
