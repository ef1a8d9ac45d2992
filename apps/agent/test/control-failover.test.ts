import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import pino from 'pino';
import {
  ControlClient,
  type ControlClientHandlers,
  type ControlClientOptions,
} from '../src/control/control-client';
import { createBrokerAgent } from '../src/trust/broker-trust';
import { waitFor } from '../src/util/wait';
import { BrokerDouble, type DoubleDevice } from './helpers/broker-double';
import { FakeTimers } from './helpers/fake-timers';
import { makeSelfSignedCert } from './helpers/self-signed-cert';

const logger = pino({ level: 'silent' });
const cert = makeSelfSignedCert();
const keys = generateKeyPair();
/** random 0.999: the first backoff step is 499 ms, so an immediate retry (0 ms) is told apart. */
const backoff = { initialMs: 500, maxMs: 30_000, random: () => 0.999 };

function handlers(events: string[]): ControlClientHandlers {
  return {
    onNetmap: () => undefined,
    onConnected: () => events.push('connected'),
    onDisconnected: () => events.push('disconnected'),
    onDeviceRemoved: () => events.push('removed'),
  };
}

/** Ports nothing listens on: a connect there is refused at once. */
async function deadPort(): Promise<number> {
  const d = new BrokerDouble(cert);
  const port = await d.listen(0);
  await d.close();
  return port;
}

describe('ControlClient with several broker instances', () => {
  const device: DoubleDevice = {
    id: randomUUID(),
    name: 'dev1',
    publicKey: keys.publicKey,
    address: '100.64.0.1',
    endpoints: [],
  };
  let instances: BrokerDouble[];
  let clients: ControlClient[];

  /** An instance of the one broker: same static key, same devices (they share the database). */
  async function instance(): Promise<{ double: BrokerDouble; url: string; port: number }> {
    const double = new BrokerDouble(cert);
    if (instances[0]) Object.assign(double, { keys: instances[0].keys });
    double.devices.set(device.id, device);
    instances.push(double);
    const port = await double.listen(0);
    return { double, url: `https://127.0.0.1:${port}/`, port };
  }

  function client(
    brokerUrls: string[],
    timers: FakeTimers,
    events: string[],
    extra: Partial<ControlClientOptions> = {},
  ) {
    const c = new ControlClient({
      brokerUrls,
      agent: createBrokerAgent({ fingerprint: cert.fingerprint }),
      deviceId: device.id,
      keyPair: keys,
      brokerPublicKey: instances[0]!.keys.publicKey,
      handlers: handlers(events),
      logger,
      timers,
      backoff,
      clockPings: 0,
      ...extra,
    });
    clients.push(c);
    return c;
  }

  /** The one reconnect timer waiting now (after a failure). */
  async function reconnectTimer(timers: FakeTimers) {
    await waitFor(() => timers.timeouts().length === 1, 10_000, 5);
    return timers.timeouts()[0]!;
  }

  beforeEach(() => {
    instances = [];
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) c.stop();
    for (const d of instances) await d.close();
  });

  it('goes at once to the next instance when the one it is connected to dies', async () => {
    const a = await instance();
    const b = await instance();
    const timers = new FakeTimers();
    const events: string[] = [];
    const c = client([a.url, b.url], timers, events);
    c.start();
    await waitFor(() => c.connected, 10_000, 5);
    expect(c.brokers.current).toEqual({ url: a.url, address: null });
    expect(b.double.hellos).toEqual([]);

    await a.double.close();
    const retry = await reconnectTimer(timers);
    expect(retry.ms).toBe(0);
    timers.fire(retry);
    await waitFor(() => c.connected, 10_000, 5);
    expect(c.brokers.current).toEqual({ url: b.url, address: null });
    expect(b.double.connectedDevices()).toEqual([device.id]);
    expect(events).toEqual(['connected', 'disconnected', 'connected']);
  });

  it('skips dead instances at once and backs off only after a whole round failed', async () => {
    const deadA = `https://127.0.0.1:${await deadPort()}/`;
    const deadB = `https://127.0.0.1:${await deadPort()}/`;
    const timers = new FakeTimers();
    await instance(); // only for its key
    const c = client([deadA, deadB], timers, []);
    c.start();
    const steps: Array<{ failed: string | undefined; delay: number }> = [];
    for (let i = 0; i < 5; i++) {
      const t = await reconnectTimer(timers);
      steps.push({ failed: c.brokers.current?.url, delay: t.ms });
      timers.fire(t);
    }
    expect(steps).toEqual([
      { failed: deadA, delay: 0 },
      { failed: deadB, delay: 499 },
      { failed: deadA, delay: 0 },
      { failed: deadB, delay: 999 },
      { failed: deadA, delay: 0 },
    ]);
    expect(c.lastError).toBe(`broker unreachable at ${deadA} (ECONNREFUSED)`);
  });

  it('after a whole round failed, the instance that comes back is found and the backoff starts over', async () => {
    const dead = `https://127.0.0.1:${await deadPort()}/`;
    const live = await instance();
    await live.double.close();
    const timers = new FakeTimers();
    const c = client([dead, live.url], timers, []);
    c.start();
    expect((await reconnectTimer(timers)).ms).toBe(0);
    timers.fire(timers.timeouts()[0]!);
    const wait = await reconnectTimer(timers);
    expect(wait.ms).toBe(499);
    await live.double.listen(live.port);
    timers.fire(wait); // dead first, at once the live one
    timers.fire(await reconnectTimer(timers));
    await waitFor(() => c.connected, 10_000, 5);
    expect(c.brokers.current?.url).toBe(live.url);
    await live.double.close();
    // Dropped from the last instance of the list: the round goes on at once with the first.
    const next = await reconnectTimer(timers);
    expect(next.ms).toBe(0);
    timers.fire(next);
    // That one is dead: the round ends with the instance that dropped, tried again at once.
    const last = await reconnectTimer(timers);
    expect([c.brokers.current?.url, last.ms]).toEqual([dead, 0]);
    timers.fire(last);
    // It is down too: the success reset the backoff, so the wait is the first step again.
    const wait2 = await reconnectTimer(timers);
    expect([c.brokers.current?.url, wait2.ms]).toEqual([live.url, 499]);
  });

  it('tries every address of a name that resolves to several', async () => {
    const live = await instance(); // on 127.0.0.1 only: 127.0.0.2 refuses
    const url = `https://brokers.test:${live.port}/`;
    const asked: string[] = [];
    const timers = new FakeTimers();
    const c = client([url], timers, [], {
      resolveHost: async (host) => {
        asked.push(host);
        return ['127.0.0.2', '127.0.0.1'];
      },
    });
    c.start();
    const retry = await reconnectTimer(timers);
    expect(c.brokers.current).toEqual({ url, address: '127.0.0.2' });
    expect(c.lastError).toBe(`broker unreachable at ${url} (127.0.0.2) (ECONNREFUSED)`);
    expect(retry.ms).toBe(0);
    timers.fire(retry);
    await waitFor(() => c.connected, 10_000, 5);
    expect(c.brokers.current).toEqual({ url, address: '127.0.0.1' });
    expect(asked).toEqual(['brokers.test']);
  });

  it('a new broker list reconnects at once to its first instance', async () => {
    const a = await instance();
    const b = await instance();
    const timers = new FakeTimers();
    const events: string[] = [];
    const c = client([a.url], timers, events);
    c.start();
    await waitFor(() => c.connected, 10_000, 5);
    c.setBrokers([b.url, a.url], createBrokerAgent({ fingerprint: cert.fingerprint }));
    expect(c.brokers.urls).toEqual([b.url, a.url]);
    await waitFor(() => c.connected && b.double.hellos.length === 1, 10_000, 5);
    expect(c.brokers.current?.url).toBe(b.url);
    expect(a.double.hellos).toHaveLength(1);
    expect(timers.timeouts()).toEqual([]);
    expect(events).toEqual(['connected', 'disconnected', 'connected']);
  });
});
