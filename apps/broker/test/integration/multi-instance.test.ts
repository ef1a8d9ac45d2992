import { API_PATHS, CloseCode } from '@trellis/proto';
import { type Backend, createBackend, tempDir } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { TestDevice, waitUntil } from '../support/test-device';

jest.setTimeout(60_000);

/** Two brokers on one Postgres: devices connected to either see the same account, via LISTEN/NOTIFY. */
describe('two broker instances sharing Postgres', () => {
  let backend: Backend;
  let one: TestBroker;
  let two: TestBroker;

  beforeAll(async () => {
    backend = await createBackend('postgres');
    one = await startTestBroker(backend);
    two = await startTestBroker({ ...backend, dataDir: tempDir() });
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await backend?.dispose();
  });

  it('changes made on one instance reach devices connected to the other', async () => {
    expect(two.broker.bootstrap).toBeUndefined();
    const a = one.device();
    await a.enroll(one.setupKey, { hostname: 'on-one' });
    expect(two.broker.brokerPublicKey).toBe(one.broker.brokerPublicKey);
    await a.connect();
    // enrolls with instance two, then is served by it while a stays on instance one
    const b = two.device();
    await b.enroll(one.setupKey, { hostname: 'on-two' });
    await a.waitForPeers((p) => p.has(b.id));
    await b.connect();
    await a.waitForPeers((p) => p.get(b.id)?.online === true);
    expect(b.peers.get(a.id)?.online).toBe(true);

    b.send({ type: 'endpoints', endpoints: ['192.0.2.44:51820'] });
    await a.waitForPeers((p) => p.get(b.id)?.endpoints[0] === '192.0.2.44:51820');

    // removal through instance one's API closes b's connection on instance two
    const res = await one.api('DELETE', `${API_PATHS.devices}/${b.id}`, { token: one.ownerToken });
    expect(res.status).toBe(200);
    expect(await b.waitForClose()).toBe(CloseCode.deviceRemoved);
    a.close();
  });

  it('a connection on another instance replaces the older one', async () => {
    const d = one.device();
    await d.enroll(one.setupKey, { hostname: 'roamer' });
    await d.connect();
    const firstWs = d.ws!;
    let code: number | undefined;
    firstWs.on('close', (c) => {
      code = c;
    });
    const sameOnTwo = new TestDevice(two.broker.url, two.broker.certFile, d.keys);
    // enrolled with instance one, authenticates against instance two: they share the broker key
    sameOnTwo.enrollment = d.enrollment;
    await sameOnTwo.connect();
    expect(await waitUntil(() => code, 15_000, 'replaced close')).toBe(CloseCode.replaced);
    sameOnTwo.close();
  });
});
