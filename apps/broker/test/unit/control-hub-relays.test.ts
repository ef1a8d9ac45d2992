import { randomUUID } from 'node:crypto';
import { DEFAULT_POLICY_TEXT } from '@trellis/policy';
import { ServerMessage } from '@trellis/proto';
import pino from 'pino';
import { ControlHub } from '../../src/control/control-hub';
import type { ControlSession } from '../../src/control/control-session';
import type { DeviceState } from '../../src/domain/netmap-builder';
import { InProcessEventBus } from '../../src/events/event-bus';
import type { DevicesService } from '../../src/services/devices.service';
import { deviceState, TEST_INSTANCE } from '../support/device-state';
import { FakeRelay, FakeRelayDirectory } from '../support/fake-relay-directory';
import { fakeSession } from '../support/fake-session';

const DEFAULT_POLICY = { version: 0, text: DEFAULT_POLICY_TEXT };

const ACCOUNT = randomUUID();

/** A device behind a NAT that maps per destination: two of them can only meet through a relay. */
function symmetricDevice(name: string, address: string, reflexive: string): DeviceState {
  return deviceState(name, address, {
    online: true,
    learned: [{ endpoint: reflexive, kind: 'reflexive', priority: 2000 }],
    mappingType: 'endpoint-dependent',
  });
}

/** The ControlHub with a fake database (one account) and fake control sessions. */
function hubScenario() {
  const a = symmetricDevice('a', '100.64.0.1', '192.0.2.1:1111');
  const b = symmetricDevice('b', '100.64.0.2', '198.51.100.2:2222');
  const devices = {
    loadAccount: async () => ({ serial: 1, devices: [a, b], policy: DEFAULT_POLICY }),
  } as unknown as DevicesService;
  const directory = new FakeRelayDirectory();
  const r1 = directory.add(new FakeRelay('r1', '203.0.113.1'));
  const bus = new InProcessEventBus();
  const hub = new ControlHub(devices, bus, {
    instanceId: TEST_INSTANCE,
    zone: 'trellis.internal',
    coalesceMs: 25,
    logger: pino({ level: 'silent' }),
    relays: directory,
    pathTimings: { directGraceMs: 10_000, offlineGraceMs: 15_000 },
  });
  hub.start();
  const received = new Map<string, ServerMessage[]>();
  const session = (d: DeviceState): ControlSession =>
    fakeSession(
      d.id,
      (frame) =>
        received.set(d.id, [...(received.get(d.id) ?? []), ServerMessage.parse(JSON.parse(frame as string))]),
      { accountId: ACCOUNT, connectionId: randomUUID(), serial: 0 },
    );
  const of = <T extends ServerMessage['type']>(d: DeviceState, type: T) =>
    (received.get(d.id) ?? []).filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  // What markOnline/markOffline publish: presence reaches the pair paths through the netmap.
  let serial = 1;
  const presence = (d: DeviceState, connection: string | null) =>
    bus.publish({
      kind: 'device-upsert',
      accountId: ACCOUNT,
      serial: ++serial,
      device: { ...d, online: connection !== null, connection },
    });
  return { a, b, hub, directory, r1, session, of, presence };
}

describe('ControlHub with relays', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('puts the relays into the snapshot, sends a delta when they change, relays a symmetric pair', async () => {
    const { a, b, hub, directory, r1, session, of } = hubScenario();
    const sa = session(a);
    const sb = session(b);
    await hub.attach(sa, 'acme');
    expect(of(a, 'netmap')[0]!.self.relays).toEqual([{ id: r1.id, name: 'r1', address: '203.0.113.1' }]);
    await hub.attach(sb, 'acme');
    hub.pathMessage(a.id, { type: 'want-path', peerId: b.id });
    await jest.advanceTimersByTimeAsync(0);
    const [toA] = of(a, 'relay');
    expect(toA).toMatchObject({ peerId: b.id, peerPublicKey: b.publicKey, endpoint: '203.0.113.1:40000' });
    expect(of(b, 'relay')[0]!.allocationId).toBe(toA!.allocationId);

    const r2 = new FakeRelay('r2', '203.0.113.2');
    directory.up(r2);
    hub.flushAll();
    for (const d of [a, b])
      expect(
        of(d, 'delta')
          .at(-1)!
          .self!.relays!.map((r) => r.name),
      ).toEqual(['r1', 'r2']);

    // r1 gone for good: the pair moves to r2, and the relay list shrinks.
    directory.down(r1);
    await jest.advanceTimersByTimeAsync(0);
    hub.flushAll();
    expect(of(a, 'relay')[1]).toMatchObject({ relayName: 'r2', endpoint: '203.0.113.2:40001' });
    expect(of(b, 'relay')[1]!.relayName).toBe('r2');
    expect(
      of(a, 'delta')
        .at(-1)!
        .self!.relays!.map((r) => r.name),
    ).toEqual(['r2']);
    hub.stop();
  });

  it('routes wants, path reports, reconnects and expiry to the pair paths', async () => {
    const { a, b, hub, directory, session, of, presence } = hubScenario();
    const sa = session(a);
    const sb = session(b);
    await hub.attach(sa, 'acme');
    await hub.attach(sb, 'acme');
    hub.pathMessage(b.id, { type: 'want-path', peerId: a.id });
    await jest.advanceTimersByTimeAsync(0);
    const first = of(a, 'relay')[0]!.allocationId;
    hub.pathMessage(a.id, {
      type: 'path',
      peerId: b.id,
      attemptId: 'local:1',
      result: 'direct',
      elapsedMs: 5,
    });
    hub.pathMessage(b.id, {
      type: 'path',
      peerId: a.id,
      attemptId: 'local:1',
      result: 'direct',
      elapsedMs: 5,
    });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(of(a, 'relay-release')).toEqual([{ type: 'relay-release', peerId: b.id, allocationId: first }]);
    expect(directory.released).toEqual([first]);

    // Wanted again after a reconnect: relayed again, and the relay's expiry reaches both agents.
    hub.detach(sb);
    await presence(b, null);
    const sb2 = session(b);
    await presence(b, `${TEST_INSTANCE}:${sb2.connectionId}`);
    await hub.attach(sb2, 'acme');
    hub.pathMessage(b.id, { type: 'want-path', peerId: a.id });
    await jest.advanceTimersByTimeAsync(0);
    const second = of(a, 'relay')[1]!.allocationId;
    directory.expire(second);
    expect(of(b, 'relay-release').at(-1)).toEqual({
      type: 'relay-release',
      peerId: a.id,
      allocationId: second,
    });

    // After an expiry the next failure brings a relay again, unless the peer is offline.
    hub.detach(sb2);
    await presence(b, null);
    hub.pathMessage(a.id, {
      type: 'path',
      peerId: b.id,
      attemptId: 'local:2',
      result: 'failed',
      elapsedMs: 5,
    });
    await jest.advanceTimersByTimeAsync(60_000);
    expect(of(a, 'relay')).toHaveLength(2);
    hub.stop();
  });
});
