import { API_PATHS, CloseCode } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { type TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

describe.each(BACKENDS)('control channel on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  const devices: TestDevice[] = [];
  const newDevice = () => {
    const d = t.device();
    devices.push(d);
    return d;
  };

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
  });
  afterEach(() => {
    for (const d of devices.splice(0)) d.close();
  });
  afterAll(async () => {
    await t?.close();
    await backend?.dispose();
  });

  it('enrolls, authenticates with the device key and gets a snapshot, then deltas for join/endpoints/online/offline/removal', async () => {
    const a = newDevice();
    const b = newDevice();
    const enrolled = await a.enroll(t.setupKey, { hostname: 'alpha', endpoints: ['192.0.2.10:51820'] });
    expect(enrolled.address).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
    expect(enrolled.dnsName).toBe('alpha.default.trellis.internal');
    expect(enrolled.brokerPublicKey).toBe(t.broker.brokerPublicKey);

    const snap = await a.connect();
    expect(snap.self.id).toBe(a.id);
    expect(snap.peers.find((p) => p.id === a.id)).toBeUndefined();
    const before = a.serial;

    // join
    await b.enroll(t.setupKey, { hostname: 'beta' });
    await a.waitForPeers((p) => p.has(b.id));
    expect(a.peers.get(b.id)).toMatchObject({
      name: 'beta',
      online: false,
      allowedIps: [`${b.enrollment!.address}/32`],
    });

    // online
    const bSnap = await b.connect();
    expect(bSnap.peers.find((p) => p.id === a.id)).toMatchObject({
      online: true,
      endpoints: ['192.0.2.10:51820'],
    });
    await a.waitForPeers((p) => p.get(b.id)?.online === true);

    // endpoint change
    b.send({ type: 'endpoints', endpoints: ['198.51.100.7:51820', '10.0.0.2:51820'] });
    await a.waitForPeers((p) => p.get(b.id)?.endpoints.length === 2);
    expect(a.peers.get(b.id)!.endpoints).toEqual(['198.51.100.7:51820', '10.0.0.2:51820']);

    // ping / pong
    b.send({ type: 'ping', t: 42 });
    const pong = await b.waitFor((m) => m.type === 'pong');
    expect(pong).toMatchObject({ type: 'pong', t: 42 });

    // offline
    b.close();
    await a.waitForPeers((p) => p.get(b.id)?.online === false);

    // every delta grew the serial by exactly one (TestDevice throws otherwise)
    expect(a.serial).toBeGreaterThan(before);
    const deltas = a.messages.filter((m) => m.type === 'delta');
    expect(deltas.length).toBe(a.serial - before);

    // removal: peers drop it, its own connection is closed with deviceRemoved
    await b.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true);
    const res = await t.api('DELETE', `${API_PATHS.devices}/${b.id}`, { token: t.ownerToken });
    expect(res.status).toBe(200);
    await a.waitForPeers((p) => !p.has(b.id));
    expect(await b.waitForClose()).toBe(CloseCode.deviceRemoved);
  });

  it('reconnecting with a stale serial gets a fresh snapshot with a higher serial', async () => {
    const a = newDevice();
    const b = newDevice();
    await a.enroll(t.setupKey, { hostname: 'stale-a' });
    await b.enroll(t.setupKey, { hostname: 'stale-b' });
    await a.connect();
    await b.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true);
    const lastSeen = a.serial;
    a.close();
    await b.waitForPeers((p) => p.get(a.id)?.online === false);
    b.send({ type: 'endpoints', endpoints: ['203.0.113.5:1234'] });
    const start = a.messages.length;
    const snap = await a.connect({ lastSerial: lastSeen });
    expect(a.messages.indexOf(snap)).toBeGreaterThanOrEqual(start);
    expect(snap.serial).toBeGreaterThan(lastSeen);
    await a.waitForPeers((p) => p.get(b.id)?.endpoints[0] === '203.0.113.5:1234');

    // Even a serial from the device's future (another instance, a restored database) is exceeded.
    a.close();
    await b.waitForPeers((p) => p.get(a.id)?.online === false);
    const ahead = await a.connect({ lastSerial: 1_000_000 });
    expect(ahead.serial).toBeGreaterThan(1_000_000);
    b.send({ type: 'endpoints', endpoints: ['203.0.113.6:1234'] });
    await a.waitForPeers((p) => p.get(b.id)?.endpoints[0] === '203.0.113.6:1234');
    expect(a.serial).toBe(ahead.serial + 1);
  });

  it('a newer connection of the same device replaces the older one', async () => {
    const a = newDevice();
    await a.enroll(t.setupKey, { hostname: 'twice' });
    await a.connect();
    const first = a.ws!;
    let firstCode: number | undefined;
    first.on('close', (code) => {
      firstCode = code;
    });
    await a.connect();
    await waitUntil(() => firstCode, 15_000, 'the first connection to close');
    expect(firstCode).toBe(CloseCode.replaced);
    // the device stays online through the replacement
    const list = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
    expect(list.json.find((d: { id: string }) => d.id === a.id).online).toBe(true);
  });

  it('isolation: a device never sees anything of another account', async () => {
    const other = await t.addAccount(`other${kind.replace(/[^a-z]/g, '')}`);
    const mine = newDevice();
    const theirs = newDevice();
    await mine.enroll(t.setupKey, { hostname: 'mine' });
    await theirs.enroll(other.setupKey, { hostname: 'theirs' });
    expect(theirs.enrollment!.accountName).toMatch(/^other/);
    const mySnap = await mine.connect();
    const theirSnap = await theirs.connect();
    expect(theirSnap.peers).toEqual([]);
    expect(mySnap.peers.find((p) => p.id === theirs.id)).toBeUndefined();
    // changes in the other account produce nothing here
    const lateJoin = newDevice();
    await lateJoin.enroll(other.setupKey, { hostname: 'late' });
    await lateJoin.connect();
    theirs.send({ type: 'endpoints', endpoints: ['192.0.2.99:1'] });
    await theirs.waitForPeers((p) => p.get(lateJoin.id)?.online === true);
    // a join in my account arrives, and nothing of theirs came before it
    const sentinel = newDevice();
    await sentinel.enroll(t.setupKey, { hostname: 'sentinel' });
    await mine.waitForPeers((p) => p.has(sentinel.id));
    const seen = JSON.stringify(mine.messages);
    for (const id of [theirs.id, lateJoin.id]) expect(seen).not.toContain(id);
    expect(seen).not.toContain('192.0.2.99');
    // the same key cannot be enrolled in two accounts
    const res = await t.api('POST', API_PATHS.enroll, {
      body: {
        protocolVersion: 1,
        setupKey: t.setupKey,
        publicKey: theirs.keys.publicKey,
        hostname: 'x',
        os: 'linux',
      },
    });
    expect(res.status).toBe(409);
  });
});
