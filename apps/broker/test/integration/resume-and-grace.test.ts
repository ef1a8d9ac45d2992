import { DeltaMessage } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/** Far longer than any test here runs: a device that left is still online for its peers. */
const LONG_GRACE_MS = 120_000;

describe.each(BACKENDS)('reconnecting devices on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const devices: TestDevice[] = [];
  const newDevice = async (hostname: string) => {
    const d = t.device();
    devices.push(d);
    await d.enroll(t.setupKey, { hostname });
    return d;
  };

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend, { offlineGraceMs: LONG_GRACE_MS });
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('a device that reconnects within the grace never goes offline for its peers, and gets a delta', async () => {
    const a = await newDevice('resume-a');
    const b = await newDevice('resume-b');
    await a.connect();
    await b.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true);
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    const heldSerial = a.serial;
    expect(a.resume).not.toBeNull();

    a.close();
    await a.waitForClose();
    // While a is away, b changes: a must get exactly that.
    b.send({ type: 'endpoints', endpoints: ['203.0.113.9:41641'] });
    await waitForEndpointsCommitted(t, b.id, '203.0.113.9:41641');
    const first = await a.reconnect();
    expect(first.type).toBe('delta');
    const delta = DeltaMessage.parse(first);
    expect(delta.base).toBe(heldSerial);
    expect(delta.serial).toBeGreaterThan(heldSerial);
    // In the resumed delta, or in the next one if the bus brought it after the reconnect.
    await a.waitForPeers((p) => p.get(b.id)?.endpoints.includes('203.0.113.9:41641') === true);
    expect(await counterFor(t, 'resumed')).toBeGreaterThanOrEqual(1);

    // b never saw a go offline: no frame it got had a offline.
    expect(sawOffline(b, a.id)).toBe(false);
    expect(b.peers.get(a.id)?.online).toBe(true);
  });

  it('a reconnection closed before its netmap (the agent gave up and retries) keeps the device online', async () => {
    const a = await newDevice('abandon-a');
    const b = await newDevice('abandon-b');
    await a.connect();
    await b.connect();
    await b.waitForPeers((p) => p.get(a.id)?.online === true);
    a.close();
    await a.waitForClose();

    // The next try closes while the broker records the device online, as an agent past its
    // deadline does in a storm; the online update finishes after the broker saw the close.
    const service = t.broker.services.devices;
    const { markOnline, markOffline } = service;
    const offlineCalls: string[] = [];
    let settled!: () => void;
    const onlineDone = new Promise<void>((r) => {
      settled = r;
    });
    service.markOffline = (deviceId, connectionId) => {
      offlineCalls.push(deviceId);
      return markOffline.call(service, deviceId, connectionId);
    };
    service.markOnline = async (...args) => {
      a.close();
      await a.waitForClose();
      while (await pendingAdmissions(t)) await new Promise((r) => setTimeout(r, 10));
      const serial = await markOnline.apply(service, args);
      // What the connection does right after the update has run by the next macrotask.
      setImmediate(settled);
      return serial;
    };
    try {
      await a.authenticate({ lastSerial: a.serial, resume: a.resume! });
      await onlineDone;
    } finally {
      service.markOnline = markOnline;
      service.markOffline = markOffline;
    }
    expect(offlineCalls).toEqual([]);
    expect((await service.forAuth(a.id))?.device.connectionId).not.toBeNull();

    // Its retry resumes, and its peer never saw it offline.
    expect((await a.reconnect()).type).toBe('delta');
    expect(sawOffline(b, a.id)).toBe(false);
  });

  it('a token the broker cannot use gets a snapshot', async () => {
    const a = await newDevice('junk-a');
    await a.connect();
    a.close();
    await a.waitForClose();
    a.resume = '1.999';
    const first = await a.reconnect();
    expect(first.type).toBe('netmap');
  });

  it('a device that does not come back goes offline once the grace has passed', async () => {
    const short = await startTestBroker(
      { ...backend, dataDir: `${backend.dataDir}-short` },
      { offlineGraceMs: 1_000, reconnectWindowMs: 1_000 },
    );
    try {
      const a = short.device();
      const b = short.device();
      devices.push(a, b);
      // A database of its own (pglite) was bootstrapped with a key; a shared one (postgres) was not.
      const key = short.setupKey || t.setupKey;
      await a.enroll(key, { hostname: 'gone-a' });
      await b.enroll(key, { hostname: 'gone-b' });
      await a.connect();
      await b.connect();
      await b.waitForPeers((p) => p.get(a.id)?.online === true);
      a.close();
      await b.waitForPeers((p) => p.get(a.id)?.online === false);

      // While a connection waits to be admitted (here: silent after opening), a mark whose grace
      // ran out waits too: its device may be in that queue.
      const queued = short.device();
      devices.push(queued);
      await queued.open();
      await a.connect();
      await b.waitForPeers((p) => p.get(a.id)?.online === true);
      const heldBefore = await heldMarks(short);
      a.close();
      await a.waitForClose();
      // Until the grace ran out and the mark was held back (no wall-clock wait).
      while ((await heldMarks(short)) === heldBefore) await new Promise((r) => setTimeout(r, 20));
      expect((await short.broker.services.devices.forAuth(a.id))?.device.connectionId).not.toBeNull();
      expect(b.peers.get(a.id)?.online).toBe(true);
      queued.close();
      await b.waitForPeers((p) => p.get(a.id)?.online === false);
    } finally {
      await short.close();
    }
  });

  it('a connection that gave up before its netmap holds marks back for the reconnect window', async () => {
    const short = await startTestBroker(
      { ...backend, dataDir: `${backend.dataDir}-window` },
      { offlineGraceMs: 1_000, reconnectWindowMs: 30_000 },
    );
    try {
      const { setupKey } = await short.addAccount(`window${kind}`);
      const [a, b, gaveUp] = [short.device(), short.device(), short.device()];
      devices.push(a, b, gaveUp);
      await a.enroll(setupKey, { hostname: 'window-a' });
      await b.enroll(setupKey, { hostname: 'window-b' });
      await a.connect();
      await b.connect();
      await b.waitForPeers((p) => p.get(a.id)?.online === true);
      // An agent past its deadline closes before its netmap; it retries within its backoff.
      await gaveUp.open();
      gaveUp.close();
      await gaveUp.waitForClose();
      a.close();
      await a.waitForClose();
      // Nothing is pending when a's grace runs out, yet its mark waits (or, wrongly, a goes offline).
      while ((await heldMarks(short)) === 0 && b.peers.get(a.id)?.online !== false)
        await new Promise((r) => setTimeout(r, 20));
      expect(await heldMarks(short)).toBe(1);
      expect(b.peers.get(a.id)?.online).toBe(true);
    } finally {
      await short.close();
    }
  });

  it("an account's netmap outlives its linger while devices are still reconnecting: they resume", async () => {
    const short = await startTestBroker(
      { ...backend, dataDir: `${backend.dataDir}-linger` },
      { offlineGraceMs: 1_000, reconnectWindowMs: 1_000 },
    );
    try {
      // An account of its own: its one device leaving leaves the hub with no connection.
      const { setupKey } = await short.addAccount(`linger${kind}`);
      const a = short.device();
      devices.push(a);
      await a.enroll(setupKey, { hostname: 'linger-a' });
      await a.connect();
      expect(a.resume).not.toBeNull();
      // A connection waiting to be admitted: the instance is still taking devices back.
      const queued = short.device();
      devices.push(queued);
      await queued.open();
      a.close();
      await a.waitForClose();
      // Until the linger (grace + 5 s) ran out and the hub was kept (no wall-clock wait).
      while ((await counter(short, 'netmapsHeld')) === 0) await new Promise((r) => setTimeout(r, 20));
      const first = await a.reconnect();
      expect(first.type).toBe('delta');
      expect(await counterFor(short, 'resumed')).toBe(1);
      queued.close();
    } finally {
      await short.close();
    }
  });
});

async function waitForEndpointsCommitted(t: TestBroker, deviceId: string, endpoint: string): Promise<void> {
  for (;;) {
    const found = await t.broker.services.devices.forAuth(deviceId);
    if (found?.device.endpoints.includes(endpoint)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function counterFor(t: TestBroker, how: string): Promise<number> {
  const metric = await t.broker.metrics.netmapStarts.get();
  return metric.values.find((v) => v.labels.how === how)?.value ?? 0;
}

/** Whether any netmap frame `viewer` got showed `peerId` offline. */
function sawOffline(viewer: TestDevice, peerId: string): boolean {
  return viewer.messages.some(
    (m) =>
      (m.type === 'delta' || m.type === 'netmap') &&
      (m.type === 'delta' ? m.upsert : m.peers).some((p) => p.id === peerId && !p.online),
  );
}

async function pendingAdmissions(t: TestBroker): Promise<number> {
  return (await t.broker.metrics.admissionPending.get()).values[0]?.value ?? 0;
}

async function heldMarks(t: TestBroker): Promise<number> {
  return counter(t, 'offlineMarksHeld');
}

async function counter(t: TestBroker, name: 'offlineMarksHeld' | 'netmapsHeld'): Promise<number> {
  return (await t.broker.metrics[name].get()).values[0]?.value ?? 0;
}
