import { generateKeyPair } from '@trellis/crypto';
import {
  type HeldAllocation,
  type RelayAllocation,
  RelayCloseCode,
  type RelayServerMessage,
} from '@trellis/proto';
import pino from 'pino';
import { BrokerMetrics } from '../../src/metrics';
import type { RelayAllocationRecord, RelayHandle } from '../../src/relay/relay-directory';
import { type RelayIdentity, type RelayLink, RelayRegistry } from '../../src/relay/relay-registry';
import { heldAllocation } from '../support/held-allocation';

const ACCOUNT_A = '11111111-1111-4111-8111-111111111111';
const ACCOUNT_B = '22222222-2222-4222-8222-222222222222';
const keyA = generateKeyPair().publicKey;
const keyB = generateKeyPair().publicKey;

/** A relay control connection as the registry sees it: records what it is sent. */
class FakeLink implements RelayLink {
  readonly sent: RelayServerMessage[] = [];
  closed?: { code: number; reason: string };
  welcome?: RelayAllocation[];
  send(msg: RelayServerMessage): void {
    this.sent.push(msg);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  rttMs(): number | null {
    return 12;
  }
  lastAllocate(): RelayAllocation {
    const m = this.sent.filter((s) => s.type === 'allocate').at(-1);
    if (m?.type !== 'allocate') throw new Error('no allocate sent');
    return m.allocation;
  }
}

function relay(id: string, accountId: string | null, name = `relay-${id.slice(0, 4)}`): RelayIdentity {
  return {
    id,
    name,
    accountId,
    publicAddress: `198.51.100.${id.charCodeAt(0)}`,
    ports: { first: 40_000, last: 40_999 },
    tcp: undefined,
  };
}
const SHARED = relay('aaaaaaaa-0000-4000-8000-000000000001', null, 'shared-1');
const PRIVATE_A = relay('bbbbbbbb-0000-4000-8000-000000000002', ACCOUNT_A, 'private-a');

describe('RelayRegistry', () => {
  let metrics: BrokerMetrics;
  let registry: RelayRegistry;
  let events: Array<[string, ...unknown[]]>;

  beforeEach(() => {
    jest.useFakeTimers();
    metrics = new BrokerMetrics();
    registry = new RelayRegistry({ metrics, logger: pino({ level: 'silent' }), downGraceMs: 5_000 });
    events = [];
    registry.on('relay-up', (r: RelayHandle) => events.push(['relay-up', r.id]));
    registry.on('relay-down', (id: string, lost: RelayAllocationRecord[]) =>
      events.push(['relay-down', id, lost]),
    );
    registry.on('expired', (id: string) => events.push(['expired', id]));
    registry.on('bound', (...args: unknown[]) => events.push(['bound', ...args]));
  });
  afterEach(() => {
    registry.close();
    jest.useRealTimers();
  });

  function connect(
    identity: RelayIdentity,
    link = new FakeLink(),
    reported: HeldAllocation[] = [],
  ): FakeLink {
    registry.attach(
      identity,
      link,
      (held) => {
        link.welcome = held;
      },
      reported,
    );
    return link;
  }

  /** allocate() answered by the fake relay with `port`. */
  async function allocated(link: FakeLink, relayId: string, port: number, account = ACCOUNT_A) {
    const p = registry.allocate(relayId, account, [keyA, keyB], 60_000);
    registry.allocated(relayId, link.lastAllocate().allocationId, port);
    return p;
  }

  async function metricValue(name: string): Promise<number> {
    const m = await metrics.registry.getSingleMetric(name)?.get();
    return m?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  }

  it('welcomes a new relay with nothing to hold and announces it after the welcome', () => {
    const link = new FakeLink();
    registry.on('relay-up', () => expect(link.welcome).toEqual([]));
    connect(SHARED, link);
    expect(events).toEqual([['relay-up', SHARED.id]]);
    expect(registry.isOnline(SHARED.id)).toBe(true);
  });

  it('resolves allocate() with the port the relay answers and sends a valid allocate', async () => {
    const link = connect(SHARED);
    const record = await allocated(link, SHARED.id, 40_001);
    const sent = link.lastAllocate();
    expect(sent).toEqual({
      allocationId: record.allocationId,
      accountId: ACCOUNT_A,
      port: null,
      sides: [
        { publicKey: keyA, bound: null },
        { publicKey: keyB, bound: null },
      ],
      idleTimeoutMs: 60_000,
    });
    expect(record).toEqual({
      allocationId: sent.allocationId,
      relayId: SHARED.id,
      accountId: ACCOUNT_A,
      port: 40_001,
      sides: sent.sides,
    });
    expect(registry.relaysFor(ACCOUNT_A)[0]!.allocations()).toBe(1);
    expect(await metricValue('trellis_relay_allocations')).toBe(1);
  });

  it('rejects on allocate-failed with the relay reason', async () => {
    const link = connect(SHARED);
    const p = registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 60_000);
    registry.allocateFailed(SHARED.id, link.lastAllocate().allocationId, 'port range exhausted');
    await expect(p).rejects.toThrow(/refused the allocation: port range exhausted/);
    expect(await metricValue('trellis_relay_allocation_failures_total')).toBe(1);
  });

  it('rejects after 5 s without an answer and releases a late allocation', async () => {
    const link = connect(SHARED);
    const p = registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 60_000);
    const { allocationId } = link.lastAllocate();
    jest.advanceTimersByTime(4_999);
    registry.allocateFailed(SHARED.id, '00000000-0000-4000-8000-000000000000', 'unrelated');
    jest.advanceTimersByTime(1);
    await expect(p).rejects.toThrow(/did not answer the allocation within 5000 ms/);
    expect(link.sent.at(-1)).toEqual({ type: 'release', allocationId });
    link.sent.length = 0;
    registry.allocated(SHARED.id, allocationId, 40_002); // too late
    expect(link.sent).toEqual([{ type: 'release', allocationId }]);
    expect(registry.allocationCount(SHARED.id)).toBe(0);
  });

  it('rejects a pending allocation when the relay goes away', async () => {
    const link = connect(SHARED);
    const p = registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 60_000);
    registry.detach(SHARED.id, link);
    await expect(p).rejects.toThrow(/disconnected/);
  });

  it('refuses what it cannot ask: unknown relay, another account, bad keys or idle timeout', async () => {
    connect(PRIVATE_A);
    await expect(registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 1_000)).rejects.toThrow(
      /not connected/,
    );
    await expect(registry.allocate(PRIVATE_A.id, ACCOUNT_B, [keyA, keyB], 1_000)).rejects.toThrow(
      /private to another account/,
    );
    await expect(registry.allocate(PRIVATE_A.id, ACCOUNT_A, [keyA, 'nope'], 1_000)).rejects.toThrow(
      /sides\.1\.publicKey/,
    );
    await expect(registry.allocate(PRIVATE_A.id, ACCOUNT_A, [keyA, keyA], 1_000)).rejects.toThrow(
      /two different keys/,
    );
    await expect(registry.allocate(PRIVATE_A.id, ACCOUNT_A, [keyA, keyB], 0)).rejects.toThrow(
      /idleTimeoutMs/,
    );
  });

  it('records bindings, reports them, and ignores reports about unknown allocations', async () => {
    const link = connect(SHARED);
    const record = await allocated(link, SHARED.id, 40_003);
    const binding = { transport: 'udp' as const, endpoint: '203.0.113.5:51820' };
    registry.bound(SHARED.id, record.allocationId, keyB, binding);
    registry.bound(SHARED.id, record.allocationId, generateKeyPair().publicKey, binding);
    registry.bound(PRIVATE_A.id, record.allocationId, keyB, binding);
    expect(events.filter((e) => e[0] === 'bound')).toEqual([['bound', record.allocationId, keyB, binding]]);
    expect(await metricValue('trellis_relay_messages_dropped_total')).toBe(2);
  });

  it('refuses an allocated port outside the relay range and releases it', async () => {
    const link = connect(SHARED);
    const p = registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 60_000);
    const { allocationId } = link.lastAllocate();
    registry.allocated(SHARED.id, allocationId, 41_000);
    await expect(p).rejects.toThrow(/port 41000, outside its range 40000-40999/);
    expect(link.sent.at(-1)).toEqual({ type: 'release', allocationId });
    expect(registry.allocationCount(SHARED.id)).toBe(0);
  });

  it('forgets an expired allocation and says so', async () => {
    const link = connect(SHARED);
    const record = await allocated(link, SHARED.id, 40_004);
    registry.expired(SHARED.id, record.allocationId);
    expect(events.at(-1)).toEqual(['expired', record.allocationId]);
    expect(registry.allocationCount(SHARED.id)).toBe(0);
  });

  it('release() tells the relay and forgets the allocation', async () => {
    const link = connect(SHARED);
    const record = await allocated(link, SHARED.id, 40_005);
    registry.release(record.allocationId);
    expect(link.sent.at(-1)).toEqual({ type: 'release', allocationId: record.allocationId });
    expect(registry.allocationCount(SHARED.id)).toBe(0);
  });

  it('gives a relay that reconnects within the grace its allocations back, bindings included', async () => {
    const first = connect(SHARED);
    const record = await allocated(first, SHARED.id, 40_006);
    const binding = { transport: 'tcp' as const };
    registry.bound(SHARED.id, record.allocationId, keyA, binding);
    registry.detach(SHARED.id, first);
    expect(registry.relaysFor(ACCOUNT_A)).toEqual([]);
    jest.advanceTimersByTime(4_900);
    const second = connect(SHARED);
    expect(second.welcome).toEqual([
      {
        allocationId: record.allocationId,
        accountId: ACCOUNT_A,
        port: 40_006,
        sides: [
          { publicKey: keyA, bound: binding },
          { publicKey: keyB, bound: null },
        ],
        idleTimeoutMs: 60_000,
      },
    ]);
    jest.advanceTimersByTime(60_000);
    expect(events.some((e) => e[0] === 'relay-down')).toBe(false);
  });

  it('reports a relay down with its allocations after the grace', async () => {
    const link = connect(SHARED);
    const record = await allocated(link, SHARED.id, 40_007);
    registry.detach(SHARED.id, link);
    jest.advanceTimersByTime(4_999);
    expect(events.some((e) => e[0] === 'relay-down')).toBe(false);
    jest.advanceTimersByTime(1);
    expect(events.at(-1)).toEqual(['relay-down', SHARED.id, [record]]);
    expect(connect(SHARED).welcome).toEqual([]);
  });

  it('reports a relay down at once when its token is revoked', async () => {
    const link = connect(SHARED);
    await allocated(link, SHARED.id, 40_008);
    registry.detach(SHARED.id, link, true);
    expect(events.at(-1)?.[0]).toBe('relay-down');
  });

  it('closes the previous connection of a relay as replaced and fails its pending allocations', async () => {
    const first = connect(SHARED);
    const p = registry.allocate(SHARED.id, ACCOUNT_A, [keyA, keyB], 60_000);
    const second = connect(SHARED);
    expect(first.closed?.code).toBe(RelayCloseCode.replaced);
    await expect(p).rejects.toThrow(/replaced/);
    registry.detach(SHARED.id, first); // the old socket's close arrives afterwards: no effect
    expect(registry.isOnline(SHARED.id)).toBe(true);
    expect(second.closed).toBeUndefined();
  });

  it('serves an account with private relays by those alone, even while none is online', () => {
    connect(SHARED);
    const privateLink = connect(PRIVATE_A);
    expect(registry.relaysFor(ACCOUNT_A).map((r) => r.id)).toEqual([PRIVATE_A.id]);
    expect(registry.relaysFor(ACCOUNT_B).map((r) => r.id)).toEqual([SHARED.id]);
    expect(registry.relaysFor(ACCOUNT_A)[0]!.rttMs()).toBe(12);
    // Its relay is away: its traffic still never crosses the shared relays.
    registry.detach(PRIVATE_A.id, privateLink);
    expect(registry.relaysFor(ACCOUNT_A)).toEqual([]);
    // The database says it has none any more (its token was revoked): shared ones again.
    registry.setPrivateAccounts([]);
    expect(registry.relaysFor(ACCOUNT_A).map((r) => r.id)).toEqual([SHARED.id]);
    // Known from the database before its relay ever connected to this instance.
    registry.setPrivateAccounts([ACCOUNT_B]);
    expect(registry.relaysFor(ACCOUNT_B)).toEqual([]);
  });

  it('lists the relays an account probes for its netmap', () => {
    const tcp = { url: 'wss://relay.example:443', fingerprint: Array(32).fill('AB').join(':') };
    connect({ ...SHARED, tcp });
    expect(registry.netmapRelays(ACCOUNT_B)).toEqual([
      { id: SHARED.id, name: 'shared-1', address: SHARED.publicAddress, tcp },
    ]);
    connect(PRIVATE_A);
    expect(registry.netmapRelays(ACCOUNT_A)).toEqual([
      { id: PRIVATE_A.id, name: 'private-a', address: PRIVATE_A.publicAddress },
    ]);
  });

  it('keeps going when a listener throws', async () => {
    registry.on('relay-up', () => {
      throw new Error('listener bug');
    });
    const link = connect(SHARED);
    await expect(allocated(link, SHARED.id, 40_009)).resolves.toMatchObject({ port: 40_009 });
  });

  it('offers a shared relay’s reflector as the second one and passes on what it observed', () => {
    const reflector = { publicKey: keyA, endpoint: '198.51.100.97:41642' };
    const observed: Array<[string, string, string]> = [];
    registry.on('observed', (relayId: string, key: string, endpoint: string) =>
      observed.push([relayId, key, endpoint]),
    );
    expect(registry.sharedReflector()).toBeUndefined();
    // A private relay's reflector is never used for everyone's devices.
    registry.attach({ ...PRIVATE_A, reflector }, new FakeLink(), () => undefined);
    expect(registry.sharedReflector()).toBeUndefined();
    registry.attach({ ...SHARED, reflector }, new FakeLink(), () => undefined);
    expect(registry.sharedReflector()).toEqual({ relayId: SHARED.id, reflector });
    registry.observed(SHARED.id, keyB, '192.0.2.17:1979');
    registry.observed('cccccccc-0000-4000-8000-000000000003', keyB, '192.0.2.17:1979'); // unknown relay
    expect(observed).toEqual([[SHARED.id, keyB, '192.0.2.17:1979']]);
  });

  describe('adopting what relays report holding (the broker restarted)', () => {
    const held = (account: string, port: number, keys: [string, string] = [keyA, keyB]) =>
      heldAllocation(account, port, keys);
    const welcomeOf = (a: HeldAllocation): RelayAllocation => ({ ...a });
    const released = (link: FakeLink) =>
      link.sent.flatMap((m) => (m.type === 'release' ? [m.allocationId] : []));

    it('adopts what a relay reports, welcomes it with them, and hands each to one claim for its pair', async () => {
      const a = held(ACCOUNT_A, 40_010);
      const b = held(ACCOUNT_B, 40_011);
      const link = connect(SHARED, new FakeLink(), [a, b]);
      expect(link.welcome).toEqual([welcomeOf(a), welcomeOf(b)]);
      expect(registry.allocationCount(SHARED.id)).toBe(2);
      // Keys in either order; the record is the relay's, bindings included.
      const claimed = await registry.claimAdopted(ACCOUNT_A, [keyB, keyA]);
      expect(claimed?.relay.id).toBe(SHARED.id);
      expect(claimed?.record).toEqual({
        allocationId: a.allocationId,
        relayId: SHARED.id,
        accountId: ACCOUNT_A,
        port: 40_010,
        sides: a.sides,
      });
      expect(await registry.claimAdopted(ACCOUNT_A, [keyA, keyB])).toBeNull(); // claimed once
      expect(await registry.claimAdopted(ACCOUNT_A, [keyA, generateKeyPair().publicKey])).toBeNull();
      // A claimed adoption is the pair's like any allocation: bindings, release.
      registry.bound(SHARED.id, a.allocationId, keyB, { transport: 'udp', endpoint: '192.0.2.12:4000' });
      expect(events.at(-1)).toEqual([
        'bound',
        a.allocationId,
        keyB,
        { transport: 'udp', endpoint: '192.0.2.12:4000' },
      ]);
      registry.release(a.allocationId);
      expect(released(link)).toEqual([a.allocationId]);
      expect(await metricValue('trellis_relay_adoptions_total')).toBe(3); // 2 adopted + 1 claimed
    });

    it('refuses foreign and malformed allocations: they are left out of the welcome, so the relay closes them', async () => {
      const shared = connect(SHARED);
      const onShared = await allocated(shared, SHARED.id, 40_001);
      const good = held(ACCOUNT_A, 40_020);
      const reported = [
        good,
        held(ACCOUNT_B, 40_021), // the token serves account A only
        held(ACCOUNT_A, 41_000), // outside the relay's ports
        held(ACCOUNT_A, 40_020, [keyB, keyA]), // port already held
        held(ACCOUNT_A, 40_022, [keyA, keyA]), // one key twice
        { ...held(ACCOUNT_A, 40_023), allocationId: onShared.allocationId }, // another relay's allocation
      ];
      const link = connect(PRIVATE_A, new FakeLink(), reported);
      expect(link.welcome).toEqual([welcomeOf(good)]);
      expect(registry.allocationCount(PRIVATE_A.id)).toBe(1);
      expect(registry.allocationCount(SHARED.id)).toBe(1);
      expect(await registry.claimAdopted(ACCOUNT_B, [keyA, keyB])).toBeNull();
      expect((await registry.claimAdopted(ACCOUNT_A, [keyA, keyB]))?.record.allocationId).toBe(
        good.allocationId,
      );
      const refused = await metrics.registry.getSingleMetric('trellis_relay_adoptions_total')?.get();
      expect(refused?.values.find((v) => v.labels.outcome === 'refused')?.value).toBe(5);
    });

    it('keeps the record it has for an allocation the relay reports again (a relay reconnecting)', async () => {
      const first = connect(SHARED);
      const record = await allocated(first, SHARED.id, 40_001);
      registry.detach(SHARED.id, first);
      const second = connect(SHARED, new FakeLink(), [
        { ...held(ACCOUNT_B, 40_001), allocationId: record.allocationId },
      ]);
      expect(second.welcome?.map((a) => [a.allocationId, a.accountId])).toEqual([
        [record.allocationId, ACCOUNT_A],
      ]);
      expect(await registry.claimAdopted(ACCOUNT_B, [keyA, keyB])).toBeNull();
    });

    it('does not hand a shared relay’s adoption to an account that has private relays', async () => {
      connect(SHARED, new FakeLink(), [held(ACCOUNT_A, 40_030)]);
      registry.setPrivateAccounts([ACCOUNT_A]);
      expect(await registry.claimAdopted(ACCOUNT_A, [keyA, keyB])).toBeNull();
    });

    it('releases adoptions nobody claimed within the grace; claimed ones stay', async () => {
      const claimedOne = held(ACCOUNT_A, 40_040);
      const unclaimed = held(ACCOUNT_A, 40_041, [keyA, generateKeyPair().publicKey]);
      const link = connect(SHARED, new FakeLink(), [claimedOne, unclaimed]);
      await registry.claimAdopted(ACCOUNT_A, [keyA, keyB]);
      await jest.advanceTimersByTimeAsync(59_999);
      expect(released(link)).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      expect(released(link)).toEqual([unclaimed.allocationId]);
      expect(registry.allocationCount(SHARED.id)).toBe(1);
      expect(await metricValue('trellis_relay_allocations')).toBe(1);
      // A relay reconnecting now gets only the claimed one back.
      expect(connect(SHARED).welcome?.map((a) => a.allocationId)).toEqual([claimedOne.allocationId]);
    });

    it('right after a restart, a claim waits for the relays that were online before, at most 35 s', async () => {
      const OTHER = relay('dddddddd-0000-4000-8000-000000000004', ACCOUNT_B, 'private-b');
      registry.expectRelays([
        { id: SHARED.id, accountId: null },
        { id: OTHER.id, accountId: ACCOUNT_B },
      ]);
      const answers: Array<string | null> = [];
      const claim = (account: string) =>
        void registry
          .claimAdopted(account, [keyA, keyB])
          .then((r) => answers.push(r?.record.allocationId ?? null));
      claim(ACCOUNT_A);
      await jest.advanceTimersByTimeAsync(1_000);
      expect(answers).toEqual([]);
      const a = held(ACCOUNT_A, 40_050);
      connect(SHARED, new FakeLink(), [a]);
      await jest.advanceTimersByTimeAsync(0);
      expect(answers).toEqual([a.allocationId]);
      // Account A expects no other relay now: a claim without an adoption is answered at once.
      claim(ACCOUNT_A);
      await jest.advanceTimersByTimeAsync(0);
      expect(answers).toEqual([a.allocationId, null]);
      // Account B still waits for its private relay, until the window closes.
      claim(ACCOUNT_B);
      await jest.advanceTimersByTimeAsync(33_999);
      expect(answers).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(1);
      expect(answers).toEqual([a.allocationId, null, null]);
    });
  });
});
