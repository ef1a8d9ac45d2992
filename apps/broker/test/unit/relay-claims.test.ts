import { generateKeyPair } from '@trellis/crypto';
import type { HeldAllocation, RelayServerMessage } from '@trellis/proto';
import pino from 'pino';
import { BrokerMetrics } from '../../src/metrics';
import { type RelayLink, RelayRegistry } from '../../src/relay/relay-registry';
import { heldAllocation } from '../support/held-allocation';

const ACCOUNT = '11111111-1111-4111-8111-111111111111';
const keys: [string, string] = [generateKeyPair().publicKey, generateKeyPair().publicKey];
const RELAY = {
  id: 'aaaaaaaa-0000-4000-8000-000000000001',
  name: 'shared-1',
  accountId: null,
  publicAddress: '198.51.100.7',
  ports: { first: 40_000, last: 40_999 },
  tcp: undefined,
};

class Link implements RelayLink {
  readonly sent: RelayServerMessage[] = [];
  send(msg: RelayServerMessage): void {
    this.sent.push(msg);
  }
  close(): void {}
  rttMs(): number | null {
    return 5;
  }
}

/**
 * A relay can hold two allocations for one pair: an owner gave the pair a new one while the old
 * lived on (an older broker did, during a rolling upgrade). A claim must give the one the agents
 * are on, or it moves them to a dead leftover (the lab lost two seconds of a relayed ping so).
 */
describe('claims when a relay holds more than one allocation for a pair', () => {
  let registry: RelayRegistry;
  beforeEach(() => {
    jest.useFakeTimers();
    registry = new RelayRegistry({ metrics: new BrokerMetrics(), logger: pino({ level: 'silent' }) });
  });
  afterEach(() => {
    registry.close();
    jest.useRealTimers();
  });
  const report = (...held: HeldAllocation[]) => registry.attach(RELAY, new Link(), () => {}, held);

  it('a claim takes the newest adoption (a relay reports in the order it allocated)', async () => {
    const older = heldAllocation(ACCOUNT, 40_001, keys);
    const newer = heldAllocation(ACCOUNT, 40_002, keys);
    report(older, newer);
    expect((await registry.claimAdopted(ACCOUNT, keys))?.record.allocationId).toBe(newer.allocationId);
    expect((await registry.claimAdopted(ACCOUNT, keys))?.record.allocationId).toBe(older.allocationId);
  });

  it("another instance's owner gets the newest, claimed here or not; an adoption so taken is kept", async () => {
    const first = heldAllocation(ACCOUNT, 40_001, keys);
    report(first);
    // This instance's owner took it up. The relay went elsewhere for a moment and comes back
    // reporting a newer one for the pair, made by the owner there: the agents are on that one.
    expect((await registry.claimAdopted(ACCOUNT, keys))?.record.allocationId).toBe(first.allocationId);
    const newer = heldAllocation(ACCOUNT, 40_002, keys);
    report(first, newer);
    expect((await registry.claimHeld(ACCOUNT, [keys[1], keys[0]], []))?.record.allocationId).toBe(
      newer.allocationId,
    );
    // Claimed so, the adoption outlives its grace; the older one is left to its owner (in use here).
    jest.advanceTimersByTime(60_000);
    expect(registry.allocationCount(RELAY.id)).toBe(2);
    expect(await registry.claimAdopted(ACCOUNT, keys)).toBeNull();
  });

  it('an older adoption left unclaimed goes at the end of its grace, the newest in use stays', async () => {
    const older = heldAllocation(ACCOUNT, 40_001, keys);
    const newer = heldAllocation(ACCOUNT, 40_002, keys);
    report(older, newer);
    expect((await registry.claimAdopted(ACCOUNT, keys))?.record.allocationId).toBe(newer.allocationId);
    expect((await registry.claimHeld(ACCOUNT, keys, []))?.record.allocationId).toBe(newer.allocationId);
    jest.advanceTimersByTime(60_000);
    expect(registry.allocationCount(RELAY.id)).toBe(1);
  });

  it('with nothing claimed, the owner elsewhere gets the newest adoption', async () => {
    const older = heldAllocation(ACCOUNT, 40_001, keys);
    const newer = heldAllocation(ACCOUNT, 40_002, keys);
    report(older, newer);
    expect((await registry.claimHeld(ACCOUNT, keys, []))?.record.allocationId).toBe(newer.allocationId);
  });
});
