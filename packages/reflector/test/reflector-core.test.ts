import { randomBytes } from 'node:crypto';
import {
  consumeResponse,
  createInitiation,
  generateKeyPair,
  type SessionKeys,
  sealTransport,
  tai64n,
} from '@trellis/noise';
import {
  DROP_REASONS,
  type PacketOutcome,
  ReflectorCore,
  type ReflectorCoreOptions,
} from '@trellis/reflector';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const reflectorKeys = generateKeyPair();
const device = generateKeyPair();
const deviceKey = b64(device.publicKey);
const home = { address: '198.51.100.7', port: 40000 };

class FakeClock {
  ms = 1_800_000_000_000;
  now = () => this.ms;
}

function makeCore(overrides: Partial<ReflectorCoreOptions> = {}) {
  const clock = new FakeClock();
  const core = new ReflectorCore({
    privateKey: b64(reflectorKeys.privateKey),
    isEnrolled: (key) => key === deviceKey,
    now: clock.now,
    ...overrides,
  });
  return { core, clock };
}

let stampMs = 1_700_000_000_000;
/** A device initiation with a strictly newer timestamp each call. */
function initiation(keys = device, timestampMs?: number) {
  stampMs += 1000;
  return createInitiation(keys, reflectorKeys.publicKey, {
    senderIndex: 7,
    timestamp: tai64n(timestampMs ?? stampMs),
  });
}

/** Runs a handshake through the core and returns the device's side of the session. */
async function handshake(
  core: ReflectorCore,
  from = home,
): Promise<{ session: SessionKeys; outcome: PacketOutcome }> {
  const init = initiation();
  const outcome = await core.handle(init.packet, from);
  if (!outcome.reply) throw new Error(`no reply: ${outcome.dropped}`);
  const done = consumeResponse(init.state, outcome.reply);
  if (!done.ok) throw new Error(`device refused the response: ${done.reason}`);
  return { session: done.session, outcome };
}

function totalDropped(core: ReflectorCore): number {
  return Object.values(core.counters().dropped).reduce((a, b) => a + b, 0);
}

describe('ReflectorCore handshakes', () => {
  it('answers an enrolled device with a response it accepts and observes its endpoint', async () => {
    const { core, clock } = makeCore();
    const { outcome } = await handshake(core);
    expect(outcome.reply).toHaveLength(92);
    expect(outcome.observation).toEqual({
      publicKey: deviceKey,
      endpoint: '198.51.100.7:40000',
      address: '198.51.100.7',
      port: 40000,
      at: clock.ms,
      via: 'initiation',
    });
    expect(core.lookup(deviceKey)).toMatchObject({ endpoint: '198.51.100.7:40000', lastSeen: clock.ms });
    expect(core.counters()).toMatchObject({ packets: 1, handshakes: 1, observations: 1 });
    expect(core.publicKey).toBe(b64(reflectorKeys.publicKey));
  });

  it('accepts an async enrollment check and normalizes IPv4-mapped sources', async () => {
    const { core } = makeCore({ isEnrolled: async (key) => key === deviceKey });
    const { outcome } = await handshake(core, { address: '::ffff:203.0.113.9', port: 1234 });
    expect(outcome.observation?.endpoint).toBe('203.0.113.9:1234');
    const v6 = await handshake(core, { address: '2001:db8::1', port: 5 });
    expect(v6.outcome.observation?.endpoint).toBe('[2001:db8::1]:5');
  });

  it('drops replayed and stale timestamps silently', async () => {
    const { core } = makeCore();
    const first = initiation(device, 1_700_100_000_000);
    expect((await core.handle(first.packet, home)).reply).toBeDefined();
    expect(await core.handle(first.packet, home)).toEqual({ dropped: 'stale-timestamp' });
    // A replay from elsewhere must not move the device's endpoint.
    expect(await core.handle(first.packet, { address: '192.0.2.66', port: 6666 })).toEqual({
      dropped: 'stale-timestamp',
    });
    const older = initiation(device, 1_700_099_000_000);
    expect(await core.handle(older.packet, home)).toEqual({ dropped: 'stale-timestamp' });
    const newer = initiation(device, 1_700_100_001_000);
    expect((await core.handle(newer.packet, home)).reply).toBeDefined();
    expect(core.lookup(deviceKey)?.endpoint).toBe('198.51.100.7:40000');
    expect(core.counters().dropped['stale-timestamp']).toBe(3);
  });

  it('drops unknown keys, failed enrollment checks and bad mac1 without answering', async () => {
    const { core } = makeCore();
    expect(await core.handle(initiation(generateKeyPair()).packet, home)).toEqual({ dropped: 'unknown-key' });
    const throwing = makeCore({
      isEnrolled: () => {
        throw new Error('database down');
      },
    }).core;
    expect(await throwing.handle(initiation().packet, home)).toEqual({ dropped: 'enrollment-check-failed' });
    const rejecting = makeCore({ isEnrolled: () => Promise.reject(new Error('x')) }).core;
    expect(await rejecting.handle(initiation().packet, home)).toEqual({ dropped: 'enrollment-check-failed' });
    const forOther = createInitiation(device, generateKeyPair().publicKey, { senderIndex: 1 });
    expect(await core.handle(forOther.packet, home)).toEqual({ dropped: 'bad-mac1' });
    expect(core.lookup(deviceKey)).toBeUndefined();
  });
});

describe('ReflectorCore keepalives', () => {
  it('refreshes last seen, re-observes on roaming, refuses replays, forgeries and unknown sessions', async () => {
    const { core, clock } = makeCore();
    const { session } = await handshake(core);
    clock.ms += 5000;
    expect(await core.handle(sealTransport(session, 0n), home)).toEqual({ observation: undefined });
    expect(core.lookup(deviceKey)?.lastSeen).toBe(clock.ms);
    expect(await core.handle(sealTransport(session, 0n), home)).toEqual({ dropped: 'replayed-keepalive' });

    const roamed = { address: '203.0.113.50', port: 50001 };
    clock.ms += 1000;
    const moved = await core.handle(sealTransport(session, 1n), roamed);
    expect(moved.observation).toMatchObject({
      endpoint: '203.0.113.50:50001',
      via: 'keepalive',
      at: clock.ms,
    });
    expect(core.lookup(deviceKey)).toMatchObject({ endpoint: '203.0.113.50:50001', since: clock.ms });

    const forged = sealTransport(session, 2n);
    forged[20]! ^= 1;
    expect(await core.handle(forged, home)).toEqual({ dropped: 'bad-keepalive' });
    const stranger = { ...session, remoteIndex: (session.remoteIndex + 1) >>> 0 };
    expect(await core.handle(sealTransport(stranger, 3n), home)).toEqual({ dropped: 'unknown-session' });
    // A data packet (non-empty payload) is not something a device sends the reflector.
    expect(await core.handle(sealTransport(session, 4n, new Uint8Array(16)), home)).toEqual({
      dropped: 'malformed',
    });
    expect(core.counters()).toMatchObject({ keepalives: 2, observations: 2 });
  });

  it('expires sessions after 180 s and forgets revoked devices', async () => {
    const { core, clock } = makeCore();
    const { session } = await handshake(core);
    clock.ms += 181_000;
    expect(await core.handle(sealTransport(session, 0n), home)).toEqual({ dropped: 'unknown-session' });
    const fresh = await handshake(core);
    core.forget(deviceKey);
    expect(await core.handle(sealTransport(fresh.session, 0n), home)).toEqual({ dropped: 'unknown-session' });
    expect(core.lookup(deviceKey)).toBeUndefined();
  });

  it('keeps the previous sessions valid for keepalives in flight after a rekey', async () => {
    const { core } = makeCore();
    const older = await handshake(core);
    const newer = await handshake(core);
    expect((await core.handle(sealTransport(older.session, 0n), home)).dropped).toBeUndefined();
    expect((await core.handle(sealTransport(newer.session, 0n), home)).dropped).toBeUndefined();
  });

  it('with key confirmation, observes only once a keepalive proves the session', async () => {
    const { core } = makeCore({ requireKeyConfirmation: true });
    const { session, outcome } = await handshake(core);
    expect(outcome.observation).toBeUndefined();
    expect(core.lookup(deviceKey)).toBeUndefined();
    const confirmed = await core.handle(sealTransport(session, 0n), home);
    expect(confirmed.observation).toMatchObject({ endpoint: '198.51.100.7:40000', via: 'keepalive' });
    expect((await core.handle(sealTransport(session, 1n), home)).observation).toBeUndefined();
  });
});

describe('ReflectorCore against junk', () => {
  it('never throws or answers random buffers of every length 0..200', async () => {
    const { core } = makeCore({ rateLimit: { capacity: 1e9, refillPerSecond: 1e9 } });
    let sent = 0;
    for (let length = 0; length <= 200; length++) {
      for (let i = 0; i < 20; i++) {
        const packet = randomBytes(length);
        // Half of them carry a plausible header so they reach the deeper parsers.
        if (length >= 4 && i % 2 === 0) packet.set([i % 4 === 0 ? 1 : 4, 0, 0, 0]);
        const outcome = await core.handle(packet, home);
        sent++;
        expect(outcome.reply).toBeUndefined();
        expect(outcome.observation).toBeUndefined();
        expect(DROP_REASONS).toContain(outcome.dropped);
      }
    }
    const counters = core.counters();
    expect(counters.packets).toBe(sent);
    expect(totalDropped(core)).toBe(sent);
    expect(counters.dropped['internal-error']).toBe(0);
    expect(counters.dropped.oversize).toBe(52 * 20);
  });

  it('never answers mutations of a valid initiation or keepalive', async () => {
    const { core } = makeCore({ rateLimit: { capacity: 1e9, refillPerSecond: 1e9 } });
    const init = initiation();
    const accepted = await core.handle(init.packet, home);
    const done = consumeResponse(init.state, accepted.reply!);
    if (!done.ok) throw new Error('unreachable');
    const keepalive = sealTransport(done.session, 5n);
    for (const original of [init.packet, keepalive]) {
      for (let round = 0; round < 400; round++) {
        const mutated = Buffer.from(original);
        const flips = 1 + (round % 3);
        for (let f = 0; f < flips; f++) mutated[randomBytes(1)[0]! % mutated.length]! ^= 1 + (round % 255);
        const variants = [
          mutated,
          mutated.subarray(0, round % mutated.length),
          Buffer.concat([mutated, randomBytes(1)]),
        ];
        for (const variant of variants) {
          const outcome = await core.handle(variant, home);
          expect(outcome.reply).toBeUndefined();
          expect(outcome.observation).toBeUndefined();
        }
      }
    }
    expect(core.counters().dropped['internal-error']).toBe(0);
    expect(core.counters().handshakes).toBe(1);
  });

  it('a response is always smaller than the initiation that caused it (no amplification)', async () => {
    const { core } = makeCore();
    const { outcome } = await handshake(core);
    expect(outcome.reply!.length).toBeLessThan(148);
  });
});

describe('ReflectorCore rate limiting', () => {
  it('limits each source IP with a token bucket on the injected clock', async () => {
    const { core, clock } = makeCore({ rateLimit: { capacity: 3, refillPerSecond: 2 } });
    const junk = new Uint8Array([9, 9, 9]);
    for (let i = 0; i < 3; i++) expect(await core.handle(junk, home)).toEqual({ dropped: 'malformed' });
    expect(await core.handle(junk, home)).toEqual({ dropped: 'rate-limited' });
    // Another port on the same IP shares the bucket; another IP has its own.
    expect(await core.handle(junk, { ...home, port: 1 })).toEqual({ dropped: 'rate-limited' });
    expect(await core.handle(junk, { address: '192.0.2.1', port: 1 })).toEqual({ dropped: 'malformed' });
    // Even a valid initiation is refused while the bucket is empty.
    expect(await core.handle(initiation().packet, home)).toEqual({ dropped: 'rate-limited' });
    clock.ms += 500; // one token back
    expect((await core.handle(initiation().packet, home)).reply).toBeDefined();
    expect(await core.handle(junk, home)).toEqual({ dropped: 'rate-limited' });
    clock.ms += 10_000; // refills to capacity, not beyond
    for (let i = 0; i < 3; i++) expect((await core.handle(junk, home)).dropped).toBe('malformed');
    expect((await core.handle(junk, home)).dropped).toBe('rate-limited');
    expect(core.counters().dropped['rate-limited']).toBe(5);
  });

  it('bounds the number of tracked sources and the global handshake rate', async () => {
    const { core, clock } = makeCore({
      rateLimit: { capacity: 2, refillPerSecond: 1, maxSources: 2 },
      handshakeRateLimit: { capacity: 1, refillPerSecond: 1 },
    });
    const junk = new Uint8Array([9]);
    await core.handle(junk, { address: '192.0.2.1', port: 1 });
    await core.handle(junk, { address: '192.0.2.2', port: 1 });
    expect(await core.handle(junk, { address: '192.0.2.3', port: 1 })).toEqual({ dropped: 'rate-limited' });
    clock.ms += 5000; // idle buckets refill and are swept, making room
    expect(await core.handle(junk, { address: '192.0.2.3', port: 1 })).toEqual({ dropped: 'malformed' });

    // Initiations failing mac1 do not use the handshake budget.
    expect(
      await core.handle(createInitiation(device, device.publicKey, { senderIndex: 1 }).packet, home),
    ).toEqual({
      dropped: 'bad-mac1',
    });
    expect((await core.handle(initiation().packet, { address: '192.0.2.3', port: 1 })).reply).toBeDefined();
    expect(await core.handle(initiation().packet, { address: '192.0.2.4', port: 1 })).toEqual({
      dropped: 'rate-limited',
    });
  });
});
