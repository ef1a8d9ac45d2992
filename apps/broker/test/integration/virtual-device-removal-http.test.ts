import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/**
 * Who may remove a gateway that serves virtual devices over the API: removal takes the virtual
 * devices an admin registered with it, so a member, even the gateway's own user, may not.
 */
describe.each(BACKENDS)('removing a gateway with virtual devices over HTTP on %s', (kind) => {
  let backend: Backend;
  let t: TestBroker;
  let member: string;
  let gw: TestDevice;

  beforeAll(async () => {
    backend = await createBackend(kind);
    t = await startTestBroker(backend);
    member = await t.addMember('member@removal.test');
    // The gateway belongs to the member: enrolled with a setup key the member created.
    const user = await t.broker.services.users.authenticate(member);
    const key = await t.broker.services.setupKeys.create(
      user.accountId,
      { name: 'members', reusable: false },
      { email: user.email, role: user.role, userId: user.userId },
    );
    gw = t.device();
    await gw.enroll(key.key, { name: 'gw-a' });
    for (const [name, lanAddress] of [
      ['printer', '192.168.1.100'],
      ['cam', '192.168.1.101'],
    ]) {
      const res = await t.api('POST', `${API_PATHS.devices}/virtual`, {
        token: t.ownerToken,
        body: { name, lanAddress, gateway: 'gw-a' },
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    gw?.close();
    await t?.close();
    await backend?.dispose();
  });

  const get = (ref: string, token = t.ownerToken) => t.api('GET', `${API_PATHS.devices}/${ref}`, { token });

  it('the member who owns the gateway sees it but gets 403 removing it; the virtual devices stay', async () => {
    const own = await get('gw-a', member);
    expect(own.status).toBe(200);
    expect(DeviceInfo.parse(own.json).user).toBe('member@removal.test');
    const res = await t.api('DELETE', `${API_PATHS.devices}/${gw.id}`, { token: member });
    expect(res.status).toBe(403);
    expect((await get('gw-a')).status).toBe(200);
    for (const name of ['printer', 'cam']) {
      expect(DeviceInfo.parse((await get(name)).json)).toMatchObject({ name, via: gw.id });
    }
  });

  it('an owner removes the gateway with its virtual devices', async () => {
    const res = await t.api('DELETE', `${API_PATHS.devices}/${gw.id}`, { token: t.ownerToken });
    expect(res.status).toBe(200);
    for (const name of ['gw-a', 'printer', 'cam']) expect((await get(name)).status).toBe(404);
  });
});
