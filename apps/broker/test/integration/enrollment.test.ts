import { generateKeyPair } from '@trellis/crypto';
import { API_PATHS, type DeviceInfo } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

describe.each(BACKENDS)('enrollment and addressing on %s', (kind) => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function broker(
    opts: { addressPoolSize?: number; addressGraceSeconds?: number } = {},
  ): Promise<TestBroker> {
    const backend: Backend = await createBackend(kind);
    const t = await startTestBroker(backend, opts);
    cleanup.push(
      () => backend.dispose(),
      () => t.close(),
    );
    return t;
  }

  it('re-enrolling the same machine (same WireGuard key) keeps id, name and address', async () => {
    const t = await broker();
    const d = t.device();
    const first = await d.enroll(t.setupKey, { hostname: 'laptop' });
    const again = await d.enroll(t.setupKey, { hostname: 'laptop', name: 'other-name' });
    expect(again).toEqual(first);
    const list = await t.api('GET', API_PATHS.devices, { token: t.ownerToken });
    expect(list.json).toHaveLength(1);
  });

  it('re-enrolling a key needs proof of its private key: without it nothing changes, no key use is spent', async () => {
    const t = await broker();
    const owner = t.device();
    await owner.enroll(t.setupKey, { hostname: 'laptop', endpoints: ['192.168.1.5:51820'] });
    const keysBefore = await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken });
    // Anyone in the account can read the public key; they cannot prove the private one.
    const thief = new TestDevice(owner.baseUrl, owner.certFile, {
      publicKey: owner.keys.publicKey,
      privateKey: generateKeyPair().privateKey,
    });
    for (const proof of [null, undefined]) {
      const res = await thief.postEnroll(t.setupKey, {
        hostname: 'laptop',
        endpoints: ['203.0.113.66:1'],
        proof,
      });
      expect(res.status).toBe(401);
      expect(res.json).toMatchObject({ message: expect.stringMatching(/needs proof of its private key/) });
    }
    const [device] = (await t.api('GET', API_PATHS.devices, { token: t.ownerToken })).json as DeviceInfo[];
    expect(device!.endpoints).toEqual(['192.168.1.5:51820']);
    expect((await t.api('GET', API_PATHS.setupKeys, { token: t.ownerToken })).json).toEqual(keysBefore.json);
    // A brand-new key needs no proof (there is nothing of anyone's to take over).
    expect((await t.device().postEnroll(t.setupKey, { proof: null })).status).toBe(201);
  });

  it('names are unique DNS labels in the account: laptop, laptop-2, from name or hostname', async () => {
    const t = await broker();
    const names = [];
    for (const extra of [
      { hostname: 'Laptop.local' },
      { hostname: 'laptop' },
      { hostname: 'x', name: 'LAPTOP' },
    ]) {
      names.push((await t.device().enroll(t.setupKey, extra)).name);
    }
    expect(names).toEqual(['laptop', 'laptop-2', 'laptop-3']);
  });

  it('addresses are unique per account; a removed device address is held back for the grace period', async () => {
    const t = await broker({ addressPoolSize: 3 });
    const a = t.device();
    const b = t.device();
    const c = t.device();
    await a.enroll(t.setupKey, { hostname: 'a' });
    await b.enroll(t.setupKey, { hostname: 'b' });
    await c.enroll(t.setupKey, { hostname: 'c' });
    const addresses = new Set([a, b, c].map((d) => d.enrollment!.address));
    expect(addresses.size).toBe(3);

    // pool full → clear error, not a 500
    const full = await t
      .device()
      .enroll(t.setupKey, { hostname: 'd' })
      .catch((e: Error) => e.message);
    expect(full).toMatch(/507.*no free overlay address/);

    // removing one does not free its address while the grace period lasts
    expect((await t.api('DELETE', `${API_PATHS.devices}/${b.id}`, { token: t.ownerToken })).status).toBe(200);
    const stillFull = await t
      .device()
      .enroll(t.setupKey, { hostname: 'e' })
      .catch((e: Error) => e.message);
    expect(stillFull).toMatch(/507/);

    // the same machine coming back within the grace period gets its old address
    const back = new TestDevice(t.broker.url, t.broker.certFile, b.keys);
    expect((await back.enroll(t.setupKey, { hostname: 'b' })).address).toBe(b.enrollment!.address);
  });

  it('with a zero grace period the address is reused at once', async () => {
    const t = await broker({ addressPoolSize: 1, addressGraceSeconds: 0 });
    const a = t.device();
    await a.enroll(t.setupKey, { hostname: 'a' });
    await t.api('DELETE', `${API_PATHS.devices}/${a.id}`, { token: t.ownerToken });
    const b = t.device();
    expect((await b.enroll(t.setupKey, { hostname: 'b' })).address).toBe(a.enrollment!.address);
  });

  it('two accounts may use the same address; each account sees only its own devices', async () => {
    const t = await broker({ addressPoolSize: 1 });
    const other = await t.addAccount('second');
    const mine = t.device();
    const theirs = t.device();
    await mine.enroll(t.setupKey, { hostname: 'one' });
    await theirs.enroll(other.setupKey, { hostname: 'one' });
    expect(theirs.enrollment!.address).toBe(mine.enrollment!.address);
    expect(theirs.enrollment!.dnsName).toBe('one.second.trellis.internal');
    const list = (await t.api('GET', API_PATHS.devices, { token: other.token })).json as DeviceInfo[];
    expect(list.map((d) => d.id)).toEqual([theirs.id]);
  });

  it('concurrent enrollments get distinct names and addresses', async () => {
    const t = await broker();
    const results = await Promise.all(
      Array.from({ length: 12 }, () => t.device().enroll(t.setupKey, { hostname: 'burst' })),
    );
    expect(new Set(results.map((r) => r.address)).size).toBe(12);
    expect(new Set(results.map((r) => r.name)).size).toBe(12);
  });

  it('keeps its broker key, certificate and data across restarts', async () => {
    const backend = await createBackend(kind);
    cleanup.push(() => backend.dispose());
    const first = await startTestBroker(backend);
    const d = first.device();
    await d.enroll(first.setupKey, { hostname: 'persist' });
    const { fingerprint, brokerPublicKey } = first.broker;
    await first.close();
    const second = await startTestBroker(backend);
    cleanup.push(() => second.close());
    expect(second.broker.bootstrap).toBeUndefined();
    expect(second.broker.fingerprint).toBe(fingerprint);
    expect(second.broker.brokerPublicKey).toBe(brokerPublicKey);
    const info = await second.broker.services.devices.forAuth(d.id);
    expect(info?.device.address).toBe(d.enrollment!.address);
    const sameDevice = new TestDevice(second.broker.url, second.broker.certFile, d.keys);
    sameDevice.enrollment = d.enrollment;
    await sameDevice.connect();
    sameDevice.close();
  });
});
