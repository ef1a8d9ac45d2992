import { randomUUID } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer, Socket } from 'node:net';
import { generateKeyPair, type KeyPair } from '@trellis/crypto';
import {
  AUTH_TIMEOUT_MS,
  HEARTBEAT_INTERVAL_MS,
  type RelayPathMessage,
  type RelayReleaseMessage,
  SNAPSHOT_TIMEOUT_MS,
} from '@trellis/proto';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { ControlClient, type ControlClientHandlers } from '../src/control/control-client';
import { PONG_DEADLINE_MS, PROBE_DEADLINE_MS } from '../src/control/control-heartbeat';
import { TCP_KEEPALIVE_IDLE_MS } from '../src/control/control-socket';
import type { Netmap } from '../src/control/netmap-tracker';
import { createBrokerAgent } from '../src/trust/broker-trust';
import { waitFor } from '../src/util/wait';
import { BrokerDouble, type DoubleDevice } from './helpers/broker-double';
import { FakeTimers } from './helpers/fake-timers';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

const logger = pino({ level: 'silent' });
const cert = makeSelfSignedCert();

interface Recorder extends ControlClientHandlers {
  netmaps: Array<{ netmap: Netmap; kind: string }>;
  events: string[];
}

function recorder(): Recorder {
  const r: Recorder = {
    netmaps: [],
    events: [],
    onNetmap: (netmap, kind) => r.netmaps.push({ netmap, kind }),
    onConnected: () => r.events.push('connected'),
    onDisconnected: (why) => r.events.push(`disconnected: ${why}`),
    onDeviceRemoved: () => r.events.push('removed'),
  };
  return r;
}

function addDevice(broker: BrokerDouble, keys: KeyPair, n: number, endpoints: string[] = []): DoubleDevice {
  const d = {
    id: randomUUID(),
    name: `dev${n}`,
    publicKey: keys.publicKey,
    address: `100.64.0.${n}`,
    endpoints,
  };
  broker.devices.set(d.id, d);
  return d;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('ControlClient against the broker double', () => {
  let broker: BrokerDouble;
  let port: number;
  let clients: ControlClient[];
  const keys = generateKeyPair();

  beforeEach(async () => {
    broker = new BrokerDouble(cert);
    port = await broker.listen(0);
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) c.stop();
    await broker.close();
  });

  function client(
    device: DoubleDevice,
    handlers: Recorder,
    extra: Partial<ConstructorParameters<typeof ControlClient>[0]> = {},
  ) {
    const c = new ControlClient({
      brokerUrls: [`https://127.0.0.1:${port}`],
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: device.id,
      keyPair: keys,
      brokerPublicKey: broker.keys.publicKey,
      handlers,
      logger,
      backoff: { initialMs: 20, maxMs: 200, random: () => 0.5 },
      ...extra,
    });
    clients.push(c);
    return c;
  }

  it('authenticates, receives the snapshot and reports its endpoints', async () => {
    const me = addDevice(broker, keys, 1);
    const peer = addDevice(broker, generateKeyPair(), 2, ['10.0.0.2:51820']);
    const r = recorder();
    const c = client(me, r);
    c.setEndpoints(['10.0.0.1:51820']);
    c.start();
    await waitFor(() => r.netmaps.length === 1, 10_000, 10);
    expect(r.netmaps[0]!.kind).toBe('snapshot');
    expect(r.netmaps[0]!.netmap.self.address).toBe('100.64.0.1');
    expect(r.netmaps[0]!.netmap.peers.map((p) => p.id)).toEqual([peer.id]);
    expect(r.events).toEqual(['connected']);
    expect(c.connected).toBe(true);
    await waitFor(() => broker.endpointReports.length === 1, 10_000, 10);
    expect(broker.endpointReports[0]).toEqual({ deviceId: me.id, endpoints: ['10.0.0.1:51820'] });
    c.setEndpoints(['10.0.0.1:51820', '192.168.7.1:51820']);
    await waitFor(() => broker.endpointReports.length === 2, 10_000, 10);
    expect(broker.endpointReports[1]!.endpoints).toEqual(['10.0.0.1:51820', '192.168.7.1:51820']);
  });

  it('turns on 1 s TCP keepalive on its connection, so a renumbered NAT resets it at once (roaming)', async () => {
    const spy = jest.spyOn(Socket.prototype, 'setKeepAlive');
    try {
      const me = addDevice(broker, keys, 1);
      const r = recorder();
      const c = client(me, r);
      c.start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      expect(spy).toHaveBeenCalledWith(true, TCP_KEEPALIVE_IDLE_MS);
      expect(TCP_KEEPALIVE_IDLE_MS).toBeLessThanOrEqual(1_000);
    } finally {
      spy.mockRestore();
    }
  });

  it('hands relay and relay-release messages to their handlers', async () => {
    const me = addDevice(broker, keys, 1);
    const peer = addDevice(broker, generateKeyPair(), 2);
    const got: Array<RelayPathMessage | RelayReleaseMessage> = [];
    const r: Recorder = { ...recorder(), onRelay: (m) => got.push(m), onRelayRelease: (m) => got.push(m) };
    const c = client(me, r);
    c.start();
    await waitFor(() => c.connected, 10_000, 10);
    const relay: RelayPathMessage = {
      type: 'relay',
      peerId: peer.id,
      peerPublicKey: peer.publicKey,
      allocationId: randomUUID(),
      relayId: randomUUID(),
      relayName: 'relay-fra',
      endpoint: '192.0.2.99:40001',
      tcp: { url: 'wss://relay.example:443', fingerprint: `${'AB:'.repeat(31)}AB` },
    };
    broker.sendMessage(me.id, relay);
    const release: RelayReleaseMessage = {
      type: 'relay-release',
      peerId: peer.id,
      allocationId: relay.allocationId,
    };
    broker.sendMessage(me.id, release);
    await waitFor(() => got.length === 2, 10_000, 10);
    expect(got).toEqual([relay, release]);
    expect(c.connected).toBe(true);
  });

  it('applies deltas in serial order: add, change, remove', async () => {
    const me = addDevice(broker, keys, 1);
    const r = recorder();
    client(me, r).start();
    await waitFor(() => r.netmaps.length === 1, 10_000, 10);
    const newcomer = addDevice(broker, generateKeyPair(), 3, ['10.0.0.3:51820']);
    broker.sendDelta(me.id, { upsert: [broker.peerOf(newcomer)], remove: [] });
    await waitFor(() => r.netmaps.length === 2, 10_000, 10);
    expect(r.netmaps[1]!.kind).toBe('delta');
    expect(r.netmaps[1]!.netmap.serial).toBe(2);
    expect(r.netmaps[1]!.netmap.peers.map((p) => p.endpoints)).toEqual([['10.0.0.3:51820']]);
    newcomer.endpoints = ['10.0.0.33:51820'];
    broker.sendDelta(me.id, { upsert: [broker.peerOf(newcomer)], remove: [] });
    await waitFor(() => r.netmaps.length === 3, 10_000, 10);
    expect(r.netmaps[2]!.netmap.peers.map((p) => p.endpoints)).toEqual([['10.0.0.33:51820']]);
    broker.sendDelta(me.id, { upsert: [], remove: [newcomer.id] });
    await waitFor(() => r.netmaps.length === 4, 10_000, 10);
    expect(r.netmaps[3]!.netmap.peers).toEqual([]);
    expect(broker.hellos).toHaveLength(1);
  });

  it('reconnects for a fresh snapshot when a delta skips a serial', async () => {
    const me = addDevice(broker, keys, 1);
    const r = recorder();
    client(me, r).start();
    await waitFor(() => r.netmaps.length === 1, 10_000, 10);
    const lost = addDevice(broker, generateKeyPair(), 4);
    broker.sendDelta(me.id, { upsert: [broker.peerOf(lost)], remove: [] }, 2); // serial 3 after 1
    await waitFor(() => r.netmaps.length === 2, 10_000, 10);
    expect(r.netmaps[1]!.kind).toBe('snapshot');
    expect(r.netmaps[1]!.netmap.peers.map((p) => p.id)).toEqual([lost.id]);
    expect(broker.hellos).toHaveLength(2);
    expect(broker.hellos[1]!.lastSerial).toBe(1);
  });

  describe('resuming the netmap it holds', () => {
    it('a reconnection sends the last token and takes the delta on top of its netmap', async () => {
      broker.resumes = true;
      const me = addDevice(broker, keys, 1);
      const peer = addDevice(broker, generateKeyPair(), 2);
      const r = recorder();
      client(me, r).start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      broker.sendDelta(me.id, { upsert: [broker.peerOf(peer)], remove: [] });
      await waitFor(() => r.netmaps.length === 2, 10_000, 10);
      const later = addDevice(broker, generateKeyPair(), 3);
      broker.dropAll();
      await waitFor(() => r.netmaps.length === 3, 10_000, 10);
      expect(broker.hellos[1]).toMatchObject({ lastSerial: 2, resume: 'tok-2' });
      expect(r.netmaps[2]!.kind).toBe('delta');
      expect(r.netmaps[2]!.netmap.serial).toBe(3);
      expect(r.netmaps[2]!.netmap.peers.map((p) => p.id).sort()).toEqual([peer.id, later.id].sort());
      expect(r.events.filter((e) => e === 'connected')).toHaveLength(2);
      // The resumed delta carried the next token, and deltas go on from its serial.
      broker.sendDelta(me.id, { upsert: [], remove: [later.id] });
      await waitFor(() => r.netmaps.length === 4, 10_000, 10);
      expect(r.netmaps[3]!.netmap.peers.map((p) => p.id)).toEqual([peer.id]);
      broker.dropAll();
      await waitFor(() => broker.hellos.length === 3, 10_000, 10);
      expect(broker.hellos[2]).toMatchObject({ lastSerial: 4, resume: 'tok-4' });
    });

    it('a frame without a token leaves nothing to resume: the next hello asks for a snapshot', async () => {
      const me = addDevice(broker, keys, 1);
      const r = recorder();
      client(me, r).start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      broker.dropAll();
      await waitFor(() => r.netmaps.length === 2, 10_000, 10);
      expect(broker.hellos[1]!.lastSerial).toBe(1);
      expect(broker.hellos[1]!.resume).toBeUndefined();
      expect(r.netmaps[1]!.kind).toBe('snapshot');
    });

    it('a broker that refuses the token in the hello (an older one) gets a hello without it next', async () => {
      broker.resumes = true;
      const me = addDevice(broker, keys, 1);
      const r = recorder();
      client(me, r).start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      broker.resumes = false;
      broker.refuseResume = true;
      broker.dropAll();
      await waitFor(() => r.netmaps.length === 2, 10_000, 10);
      expect(broker.hellos.map((h) => h.resume)).toEqual([undefined, 'tok-1', undefined]);
      expect(r.netmaps[1]!.kind).toBe('snapshot');
    });
  });

  it('refuses an impostor broker: no auth proof is sent, no netmap accepted', async () => {
    const me = addDevice(broker, keys, 1);
    broker.impostorKeys = generateKeyPair();
    const r = recorder();
    const c = client(me, r);
    c.start();
    await waitFor(() => broker.hellos.length >= 2, 10_000, 10); // it tried, failed, retried
    expect(r.netmaps).toEqual([]);
    expect(broker.connectedDevices()).toEqual([]);
    expect(c.connected).toBe(false);
    expect(c.lastError).toMatch(/failed to prove its identity/);
  });

  it('stops and reports when the broker removes the device', async () => {
    const me = addDevice(broker, keys, 1);
    const r = recorder();
    const c = client(me, r);
    c.start();
    await waitFor(() => r.netmaps.length === 1, 10_000, 10);
    broker.removeDevice(me.id);
    await waitFor(() => r.events.includes('removed'), 10_000, 10);
    await new Promise((res) => setTimeout(res, 300)); // several backoff periods: no reconnect
    expect(broker.hellos).toHaveLength(1);
    expect(c.connected).toBe(false);
  });

  it('backs off exponentially with jitter up to the cap, and resets after a success', async () => {
    const me = addDevice(broker, keys, 1);
    const deadPort = await freePort();
    const timers = new FakeTimers();
    const r = recorder();
    const c = new ControlClient({
      brokerUrls: [`https://127.0.0.1:${deadPort}`],
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: me.id,
      keyPair: keys,
      brokerPublicKey: broker.keys.publicKey,
      handlers: r,
      logger,
      timers,
      backoff: { initialMs: 500, maxMs: 30_000, random: () => 0.999 },
      clockPings: 0, // no ping (and no pong deadline) pending once connected
    });
    clients.push(c);
    c.start();
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      await waitFor(() => timers.timeouts().length === 1, 10_000, 5);
      const t = timers.timeouts()[0]!;
      delays.push(t.ms);
      timers.fire(t);
    }
    expect(delays).toEqual([499, 999, 1999, 3998, 7996, 15992, 29985, 29985, 29985]);
    expect(c.lastError).toBe(`broker unreachable at https://127.0.0.1:${deadPort} (ECONNREFUSED)`);

    // The broker appears on that port; the next attempt succeeds and the backoff starts over.
    const live = new BrokerDouble(cert);
    live.devices.set(me.id, me);
    Object.assign(live, { keys: broker.keys });
    await live.listen(deadPort);
    try {
      await waitFor(() => timers.timeouts().length === 1, 10_000, 5);
      timers.fire(timers.timeouts()[0]!);
      await waitFor(() => r.netmaps.length === 1, 10_000, 5);
      // Only the auth timer was set during the handshake, and it is cleared once ready.
      expect(timers.timeouts().filter((t) => t.ms === AUTH_TIMEOUT_MS)).toEqual([]);
      live.dropAll();
      await waitFor(() => timers.timeouts().length === 1, 10_000, 5);
      expect(timers.timeouts()[0]!.ms).toBe(499);
      expect(r.events).toEqual(['connected', expect.stringMatching(/^disconnected/)]);
    } finally {
      c.stop();
      await live.close();
    }
  });

  it("shows the broker's reason when it refuses the device", async () => {
    const stranger = {
      id: randomUUID(),
      name: 'x',
      publicKey: keys.publicKey,
      address: '100.64.0.9',
      endpoints: [],
    };
    const r = recorder();
    const c = client(stranger, r); // never registered with the broker
    c.start();
    await waitFor(() => c.lastError !== null && /refused authentication/.test(c.lastError), 10_000, 5);
    expect(c.lastError).toContain('unknown device');
    expect(r.netmaps).toEqual([]);
  });

  it('names the broker that closed, not an earlier one in the same round that was unreachable', async () => {
    const server = createHttpsServer({ key: cert.key, cert: cert.cert });
    const wss = new WebSocketServer({ server });
    let hellos = 0;
    wss.on('connection', (ws) =>
      ws.on('message', () => {
        hellos += 1;
        ws.close(1013, 'try again later');
      }),
    );
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const busyPort = (server.address() as AddressInfo).port;
    const me = addDevice(broker, keys, 1);
    const timers = new FakeTimers();
    const c = client(me, recorder(), {
      brokerUrls: [`https://127.0.0.1:${await freePort()}`, `https://127.0.0.1:${busyPort}`],
      timers,
    });
    c.start();
    try {
      await waitFor(
        () => /ECONNREFUSED/.test(c.lastError ?? '') && timers.timeouts().length === 1,
        10_000,
        5,
      );
      // At once to the next instance, which takes the hello and closes: now a backoff waits.
      timers.fire(timers.timeouts()[0]!);
      const backoffWaits = () =>
        timers.timeouts().length === 1 && timers.timeouts()[0]!.ms !== AUTH_TIMEOUT_MS;
      await waitFor(() => hellos === 1 && backoffWaits(), 10_000, 5);
      expect(c.lastError).toBe('closed by broker (1013: try again later)');
    } finally {
      c.stop();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('gives up on a broker that never answers the hello (auth timeout) and retries', async () => {
    const server = createHttpsServer({ key: cert.key, cert: cert.cert });
    const wss = new WebSocketServer({ server });
    const hellos: string[] = [];
    wss.on('connection', (ws) => ws.on('message', (d) => hellos.push(d.toString())));
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const silentPort = (server.address() as AddressInfo).port;
    const me = addDevice(broker, keys, 1);
    const timers = new FakeTimers();
    const c = new ControlClient({
      brokerUrls: [`https://127.0.0.1:${silentPort}`],
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: me.id,
      keyPair: keys,
      brokerPublicKey: broker.keys.publicKey,
      handlers: recorder(),
      logger,
      timers,
      backoff: { initialMs: 500, maxMs: 30_000, random: () => 0 },
    });
    clients.push(c);
    c.start();
    try {
      await waitFor(() => hellos.length === 1, 10_000, 5);
      const authTimer = timers.timeouts().find((t) => t.ms === AUTH_TIMEOUT_MS)!;
      expect(authTimer).toBeDefined();
      timers.fire(authTimer);
      expect(c.lastError).toMatch(/did not complete authentication/);
      const retry = timers.timeouts().find((t) => t.ms === 250)!;
      timers.fire(retry);
      await waitFor(() => hellos.length === 2, 10_000, 5);
    } finally {
      c.stop();
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('once the broker proved itself, waits SNAPSHOT_TIMEOUT_MS (not the auth timeout) for the snapshot', async () => {
    broker.holdSnapshots = true;
    const me = addDevice(broker, keys, 1);
    const timers = new FakeTimers();
    const r = recorder();
    const c = client(me, r, { timers });
    c.start();
    await waitFor(() => broker.authed === 1, 10_000, 5);
    // The auth timer gave way to the longer snapshot timer: a busy broker is not abandoned at 10 s.
    const pending = timers.timeouts().map((t) => t.ms);
    expect(pending).toContain(SNAPSHOT_TIMEOUT_MS);
    expect(pending).not.toContain(AUTH_TIMEOUT_MS);
    timers.fire(timers.timeouts().find((t) => t.ms === SNAPSHOT_TIMEOUT_MS)!);
    expect(c.lastError).toMatch(/did not send the netmap in time/);
    expect(r.netmaps).toEqual([]);
  });

  it('pings every heartbeat interval and drops a broker that leaves a ping unanswered', async () => {
    const me = addDevice(broker, keys, 1);
    const timers = new FakeTimers();
    const r = recorder();
    // Heartbeats only: no clock-offset pings after authentication.
    const c = client(me, r, {
      timers,
      backoff: { initialMs: 500, maxMs: 30_000, random: () => 0 },
      clockPings: 0,
    });
    c.start();
    await waitFor(() => r.netmaps.length === 1, 10_000, 5);
    const heartbeat = [...timers.pending.values()].find((t) => t.repeat && t.ms === HEARTBEAT_INTERVAL_MS)!;
    expect(heartbeat).toBeDefined();
    timers.advance(HEARTBEAT_INTERVAL_MS);
    heartbeat.fn();
    await waitFor(() => broker.pings === 1 && timers.timeouts().length === 0, 10_000, 5);
    // Answered: no deadline left. The next ping goes unanswered: dead at its deadline, not after 45 s.
    broker.deaf = true;
    timers.advance(HEARTBEAT_INTERVAL_MS);
    heartbeat.fn();
    await waitFor(() => broker.pings === 2, 10_000, 5);
    const deadline = timers.timeouts().find((t) => t.ms === PONG_DEADLINE_MS)!;
    expect(deadline).toBeDefined();
    timers.fire(deadline);
    expect(c.connected).toBe(false);
    expect(c.lastError).toBe('broker did not answer a ping in time');
    expect(r.events).toEqual(['connected', 'disconnected: broker did not answer a ping in time']);
    // The connection is dead, the broker may not be: the new one is dialled at once, no backoff.
    await waitFor(() => broker.hellos.length === 2, 10_000, 5);
  });

  describe('when this device moves to another network', () => {
    // A backoff far longer than the test: a reconnect within it came from the network change.
    const slow = { backoff: { initialMs: 600_000, maxMs: 600_000, random: () => 0.5 } };

    it("reconnects at once when the device no longer has its connection's address, else keeps it", async () => {
      const r = recorder();
      const c = client(addDevice(broker, keys, 1), r, slow);
      c.start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      const asked: string[] = [];
      // Our connection's address (127.0.0.1) is still ours: nothing to do.
      c.networkChanged((a) => {
        asked.push(a);
        return a === '127.0.0.1';
      });
      expect(asked).toEqual(['127.0.0.1']);
      expect(c.connected).toBe(true);
      // It is gone (as when a laptop left the Wi-Fi it connected over): a new connection now.
      c.networkChanged(() => false);
      expect(c.connected).toBe(false);
      expect(r.events).toEqual([
        'connected',
        "disconnected: this device no longer has the connection's address 127.0.0.1",
      ]);
      await waitFor(() => broker.hellos.length === 2 && c.connected, 10_000, 10);
      expect(r.netmaps.at(-1)?.kind).toBe('snapshot');
    });

    it('keeps its address but the path to the broker died: a probe, and a new connection when it goes unanswered', async () => {
      const timers = new FakeTimers();
      const r = recorder();
      const c = client(addDevice(broker, keys, 1), r, { ...slow, timers, clockPings: 0 });
      c.start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      // A change that leaves the connection working: the probe is answered, nothing happens.
      c.networkChanged(() => true);
      await waitFor(() => broker.pings === 1 && timers.timeouts().length === 0, 10_000, 5);
      expect(c.connected).toBe(true);
      // Moved to another site behind the same address plan: the old connection leads nowhere.
      broker.deaf = true;
      c.networkChanged(() => true);
      await waitFor(() => broker.pings === 2, 10_000, 5);
      timers.fire(timers.timeouts().find((t) => t.ms === PROBE_DEADLINE_MS)!);
      expect(r.events).toEqual(['connected', 'disconnected: broker did not answer a ping in time']);
      broker.deaf = false;
      // Reconnected at once, not after the (ten-minute) backoff.
      expect(timers.timeouts().some((t) => t.ms >= 60_000)).toBe(false);
      await waitFor(() => broker.hellos.length === 2 && c.connected, 10_000, 10);
    });

    it('a reconnect waiting out its backoff goes at once on a network change', async () => {
      const r = recorder();
      const c = client(addDevice(broker, keys, 1), r, slow);
      c.start();
      await waitFor(() => r.netmaps.length === 1, 10_000, 10);
      broker.dropAll();
      await waitFor(() => r.events.length === 2, 10_000, 10);
      expect(c.connected).toBe(false);
      c.networkChanged(() => true);
      await waitFor(() => broker.hellos.length === 2 && c.connected, 10_000, 10);
    });
  });
});
