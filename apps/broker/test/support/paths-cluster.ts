import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import { DEFAULT_POLICY_TEXT } from '@trellis/policy';
import { type BrokerEvent, decodeBrokerEvent, encodeBrokerEvent, ServerMessage } from '@trellis/proto';
import pino from 'pino';
import { ClusterRelays } from '../../src/cluster/cluster-relays';
import { ControlHub } from '../../src/control/control-hub';
import type { ControlSession } from '../../src/control/control-session';
import type { DeviceState } from '../../src/domain/netmap-builder';
import { type EventBus, InProcessEventBus } from '../../src/events/event-bus';
import type { DevicesService } from '../../src/services/devices.service';
import { deviceState } from './device-state';
import { FakeRelay, FakeRelayDirectory } from './fake-relay-directory';
import { fakeSession } from './fake-session';

const DEFAULT_POLICY = { version: 0, text: DEFAULT_POLICY_TEXT };

export const ACCOUNT = randomUUID();
export const A = '00000000000a';
export const B = '00000000000b';
export const C = '00000000000c';
/** An instance id below A's: a device connected there makes it the owner. */
export const Z = '000000000009';

/** Claims asked over the bus, as `from→to`. */
export function claimsOn(bus: EventBus): string[] {
  const claims: string[] = [];
  bus.subscribe((e) => {
    if (e.kind === 'relay-request' && e.request.op === 'claim') claims.push(`${e.from}→${e.to}`);
  });
  return claims;
}

/**
 * One bus for every instance that carries each event as PostgreSQL would: encoded and parsed again.
 * An instance's own view of it (`of`) can lose its connection (`away`) and get it back (`back`).
 */
class WireBus implements EventBus {
  readonly inner = new InProcessEventBus();
  readonly kinds: string[] = [];
  private readonly gone = new Set<string>();
  private readonly reconnected = new Map<string, Set<() => void>>();
  async publish(event: BrokerEvent): Promise<void> {
    const decoded = decodeBrokerEvent(encodeBrokerEvent(event));
    if (!decoded.ok) throw new Error(`${event.kind} dropped on receipt: ${decoded.error}`);
    this.kinds.push(event.kind);
    await this.inner.publish(decoded.event);
  }
  subscribe(handler: (e: BrokerEvent) => void) {
    return this.inner.subscribe(handler);
  }
  onReconnected() {
    return () => {};
  }
  async close() {}

  /** The instance's connection: while it is away, its publishes fail and it receives nothing. */
  of(instance: string): EventBus {
    const fns = new Set<() => void>();
    this.reconnected.set(instance, fns);
    return {
      publish: (event) =>
        this.gone.has(instance) ? Promise.reject(new Error('bus away')) : this.publish(event),
      subscribe: (handler) => this.subscribe((e) => this.gone.has(instance) || handler(e)),
      onReconnected: (fn) => {
        fns.add(fn);
        return () => fns.delete(fn);
      },
      close: async () => {},
    };
  }
  away(instance: string): void {
    this.gone.add(instance);
  }
  back(instance: string): void {
    this.gone.delete(instance);
    for (const fn of this.reconnected.get(instance) ?? []) fn();
  }
}

/** A device that connects (not a virtual one): it has a key. */
type MeshDevice = DeviceState & { publicKey: string };

function symmetric(name: string, address: string, reflexive: string): MeshDevice {
  return {
    ...deviceState(name, address, {
      learned: [{ endpoint: reflexive, kind: 'reflexive', priority: 2000 }],
      mappingType: 'endpoint-dependent',
    }),
    publicKey: generateKeyPair().publicKey,
  };
}

/** Two broker instances on one bus, one device connected to each, the relay connected to B only. */
export function cluster() {
  const bus = new WireBus();
  const a = symmetric('a', '100.64.0.1', '192.0.2.1:1111');
  const b = symmetric('b', '100.64.0.2', '198.51.100.2:2222');
  const state = new Map<string, DeviceState>([
    [a.id, a],
    [b.id, b],
  ]);
  let serial = 1;
  const devices = {
    loadAccount: async () => ({ serial, devices: [...state.values()], policy: DEFAULT_POLICY }),
    accountSerials: async (ids: string[]) => new Map(ids.map((id) => [id, serial])),
  } as unknown as DevicesService;
  const received = new Map<string, ServerMessage[]>();
  const relayAtB = new FakeRelay('r1', '203.0.113.1');
  /** Each instance's reflectors: where they saw which key (the test says), and who listens. */
  const reflectors = new Map<
    string,
    { seen: Map<string, string[]>; listeners: Array<(key: string) => void> }
  >();
  /** Another broker instance on the bus, with its own relays (`local`). */
  const instance = (id: string, local: FakeRelayDirectory) => {
    const reflector = { seen: new Map<string, string[]>(), listeners: [] as Array<(key: string) => void> };
    reflectors.set(id, reflector);
    const own = bus.of(id);
    const relays = new ClusterRelays(local, own, { instanceId: id, logger: pino({ level: 'silent' }) });
    relays.start();
    const hub = new ControlHub(devices, own, {
      instanceId: id,
      zone: 'trellis.internal',
      coalesceMs: 25,
      logger: pino({ level: process.env.CLUSTER_LOG ?? 'silent' }),
      relays,
      reflectors: [{ publicKey: b.publicKey, endpoint: '198.51.100.10:41641' }],
      reflexive: {
        seenSince: (key: string) => reflector.seen.get(key) ?? null,
        onObservation: (fn: (key: string) => void) => {
          reflector.listeners.push(fn);
          return () => {};
        },
      },
    });
    hub.start();
    return { id, hub, local, relays };
  };
  const localA = new FakeRelayDirectory();
  const localB = new FakeRelayDirectory();
  const ia = instance(A, localA);
  const ib = instance(B, localB);
  localB.up(relayAtB);
  /** What markOnline does, then the instance attaches the session. */
  const connect = async (at: typeof ia, d: DeviceState) => {
    const session: ControlSession = fakeSession(
      d.id,
      (frame) =>
        received.set(d.id, [...(received.get(d.id) ?? []), ServerMessage.parse(JSON.parse(frame as string))]),
      { accountId: ACCOUNT, connectionId: `${at.id}:${randomUUID()}`, serial: 0 },
    );
    const now = { ...state.get(d.id)!, online: true, connection: session.connectionId };
    state.set(d.id, now);
    await bus.publish({ kind: 'device-upsert', accountId: ACCOUNT, serial: ++serial, device: now });
    await at.hub.attach(session, 'acme');
    return session;
  };
  /** What markOffline does (or the takeover of a dead instance's devices). */
  const offline = async (d: DeviceState) => {
    const now = { ...state.get(d.id)!, online: false, connection: null };
    state.set(d.id, now);
    await bus.publish({ kind: 'device-upsert', accountId: ACCOUNT, serial: ++serial, device: now });
  };
  const of = <T extends ServerMessage['type']>(d: DeviceState, type: T) =>
    (received.get(d.id) ?? []).filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);
  /** The instance's reflector sees the device's WireGuard key at `endpoint`. */
  const observe = (at: { id: string }, d: MeshDevice, endpoint: string) => {
    const r = reflectors.get(at.id)!;
    r.seen.set(d.publicKey, [endpoint]);
    for (const fn of r.listeners) fn(d.publicKey);
  };
  /** a at A, b at B, and b wants a path to a: the pair is relayed; returns the allocation's id. */
  const relayed = async () => {
    await connect(ia, a);
    await connect(ib, b);
    ib.hub.pathMessage(b.id, { type: 'want-path', peerId: a.id });
    await jest.advanceTimersByTimeAsync(0);
    return of(a, 'relay')[0]!.allocationId;
  };
  /** A third instance, C, on the same bus (its relays are the test's). */
  const instanceC = () => {
    const local = new FakeRelayDirectory();
    const relays = new ClusterRelays(local, bus, { instanceId: C, logger: pino({ level: 'silent' }) });
    relays.start();
    return { local, relays };
  };
  /** A third device of the account (symmetric NAT), not connected yet. */
  const device = (name: string, address: string, reflexive: string) => {
    const d = symmetric(name, address, reflexive);
    state.set(d.id, d);
    return d;
  };
  return { bus, a, b, ia, ib, relayAtB, connect, offline, of, observe, relayed, instance, instanceC, device };
}
