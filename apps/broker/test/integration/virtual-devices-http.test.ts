import { newNonce } from '@trellis/crypto';
import { API_PATHS, CloseCode, DeviceInfo, PROTOCOL_VERSION } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { cli } from '../support/cli';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/** Virtual devices over the API, the admin socket's CLI and the control channel. */
describe.each(BACKENDS)('virtual devices over HTTP and the CLI on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  let member: string;
  let gw: TestDevice;

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
    member = await t.addMember('member@virtual.test');
    gw = t.device();
    await gw.enroll(t.setupKey, { name: 'gw' });
  });
  afterAll(async () => {
    gw?.close();
    await t?.close();
    await backend?.dispose();
  });

  /** `token` null: not signed in. */
  const post = (body: unknown, token: string | null = t.ownerToken) =>
    t.api('POST', `${API_PATHS.devices}/virtual`, { ...(token ? { token } : {}), body });

  it('an admin registers one: 201 with the device; members and strangers may not', async () => {
    const res = await post({ name: 'printer', lanAddress: '192.168.1.100', gateway: 'gw' });
    expect(res.status).toBe(201);
    const info = DeviceInfo.parse(res.json);
    expect(info).toMatchObject({ name: 'printer', via: gw.id, lanAddress: '192.168.1.100', publicKey: null });
    const listed = (await t.api('GET', `${API_PATHS.devices}/printer`, { token: t.ownerToken })).json;
    expect(DeviceInfo.parse(listed)).toEqual(info);
    expect((await post({ name: 'cam', lanAddress: '192.168.1.5', gateway: 'gw' }, member)).status).toBe(403);
    expect((await post({ name: 'cam', lanAddress: '192.168.1.5', gateway: 'gw' }, null)).status).toBe(401);
  });

  it('answers 400 with the schema message, 404 for an unknown gateway, 409 for duplicates', async () => {
    const bad = await post({ name: 'cam', lanAddress: '127.0.0.5', gateway: 'gw' });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/^lanAddress: must not be in 127\.0\.0\.0\/8/);
    expect((await post({ name: 'cam', lanAddress: '192.168.1.5', gateway: 'gw', extra: 1 })).status).toBe(
      400,
    );
    const unknown = await post({ name: 'cam', lanAddress: '192.168.1.5', gateway: 'nowhere' });
    expect(unknown.status).toBe(404);
    const dupName = await post({ name: 'printer', lanAddress: '192.168.1.5', gateway: 'gw' });
    expect(dupName.status).toBe(409);
    const dupLan = await post({ name: 'cam', lanAddress: '192.168.1.100', gateway: 'gw' });
    expect(dupLan.status).toBe(409);
    expect(dupLan.json.message).toMatch(/192\.168\.1\.100 behind gateway gw is the virtual device "printer"/);
  });

  it('refuses a re-key of a virtual device with 409', async () => {
    const res = await t.api('PUT', `${API_PATHS.devices}/printer/key`, {
      token: t.ownerToken,
      body: { publicKey: t.device().keys.publicKey },
    });
    expect(res.status).toBe(409);
    expect(res.json.message).toMatch(/virtual device: it has no key/);
  });

  it("a hello naming a virtual device's id fails as for an unknown device", async () => {
    const printer = DeviceInfo.parse(
      (await t.api('GET', `${API_PATHS.devices}/printer`, { token: t.ownerToken })).json,
    );
    const intruder = t.device();
    await intruder.open();
    intruder.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      deviceId: printer.id,
      publicKey: intruder.keys.publicKey,
      clientNonce: newNonce(),
    });
    expect(await intruder.waitForClose()).toBe(CloseCode.authFailed);
    expect(intruder.closeReason).toMatch(/unknown device or key/);
  });

  it('trellis-broker devices add-virtual registers one through the running broker and prints it', async () => {
    const dd = ['--data-dir', backend.dataDir];
    const added = await cli([
      'devices',
      'add-virtual',
      'camera',
      '--lan',
      '192.168.1.20',
      '--gateway',
      'gw',
      '--account',
      'default',
      ...dd,
    ]);
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    expect(added.out).toMatch(
      /^virtual device camera \([0-9a-f-]{36}\) added: camera\.default\.\S+ 100\.\S+ -> 192\.168\.1\.20 via gateway /,
    );
    const json = await cli(['devices', 'list', '--account', 'default', ...dd, '--json']);
    const camera = (JSON.parse(json.out) as DeviceInfo[]).find((d) => d.name === 'camera');
    expect(camera).toMatchObject({ via: gw.id, lanAddress: '192.168.1.20', publicKey: null });
    const dup = await cli([
      'devices',
      'add-virtual',
      'camera2',
      '--lan',
      '192.168.1.20',
      '--gateway',
      'gw',
      '--account',
      'default',
      ...dd,
    ]);
    expect(dup.code).toBe(1);
    expect(dup.err).toBe('error: 192.168.1.20 behind gateway gw is the virtual device "camera" already');
  });
});
