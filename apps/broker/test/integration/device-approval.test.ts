import { AccountSettings, API_PATHS, AuditPage, CloseCode, DeviceInfo, DeviceListPage } from '@trellis/proto';
import { askUdp } from '../../../../packages/dns/test/support/dns-client';
import { createBackend } from '../support/backends';
import { startTestBroker, type TestBroker } from '../support/fixture';
import { signInDevice } from '../support/sign-in-flow';
import type { TestDevice } from '../support/test-device';

jest.setTimeout(60_000);

/**
 * Admins may require approval of new devices: a device a member signs in is enrolled but in no
 * netmap, has no name in DNS and cannot connect until an owner or admin approves it.
 */
describe('approval of new devices', () => {
  let t: TestBroker;
  let member: string;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const backend = await createBackend('pglite');
    t = await startTestBroker(backend, {
      deviceAuthIntervalSeconds: 1,
      zone: 'mesh.test',
      dns: { host: '127.0.0.1', port: 0, rateLimit: 0 },
    });
    member = await t.addMember('member@approval.test');
    dispose = async () => {
      await t.close();
      await backend.dispose();
    };
  });
  afterAll(() => dispose());

  const settings = (token: string, body?: unknown) =>
    body === undefined
      ? t.api('GET', API_PATHS.accountSettings, { token })
      : t.api('PATCH', API_PATHS.accountSettings, { token, body });

  const signIn = (device: TestDevice, name: string, token: string) => signInDevice(t, device, name, token);

  it('is off by default; members read the setting, only owners and admins change it', async () => {
    expect(AccountSettings.parse((await settings(member)).json)).toEqual({ requireDeviceApproval: false });
    expect((await settings(member, { requireDeviceApproval: true })).status).toBe(403);
    expect((await settings(t.ownerToken, { requireDeviceApproval: 'yes' })).status).toBe(400);
    expect((await settings(t.ownerToken, { other: true })).status).toBe(400);
    const on = await settings(t.ownerToken, { requireDeviceApproval: true });
    expect(on.status).toBe(200);
    expect(on.json).toEqual({ requireDeviceApproval: true });
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=account.settings-changed`, { token: t.ownerToken }))
        .json,
    );
    expect(log.events).toHaveLength(1);
    expect(log.events[0]!.details).toEqual({ requireDeviceApproval: { from: false, to: true } });
  });

  it("a member's device waits: no peer sees it, its connection is refused, no name in DNS, until an admin approves it", async () => {
    const peer = t.device();
    await peer.enroll(t.setupKey, { name: 'server' }); // a setup key is an admin's approval in advance
    await peer.connect();

    const laptop = t.device();
    const { decided, enrolled } = await signIn(laptop, 'members-laptop', member);
    expect(decided).toMatchObject({ approved: true, awaitingAdmin: true });
    expect(enrolled.approved).toBe(false);
    const pending = DeviceListPage.parse(
      (await t.api('GET', `${API_PATHS.deviceList}?status=pending`, { token: t.ownerToken })).json,
    );
    expect(pending.devices.map((d) => [d.name, d.approved])).toEqual([['members-laptop', false]]);

    const name = 'members-laptop.default.mesh.test';
    expect((await askUdp(t.broker.dnsPort!, name)).rcode).toBe(3);
    await laptop.authenticate({});
    expect(await laptop.waitForClose()).toBe(CloseCode.pendingApproval);
    expect(peer.peers.has(laptop.id)).toBe(false);
    expect(
      (await t.api('POST', `${API_PATHS.devices}/members-laptop/approval`, { token: member })).status,
    ).toBe(403);

    const approved = await t.api('POST', `${API_PATHS.devices}/members-laptop/approval`, {
      token: t.ownerToken,
    });
    expect(approved.status).toBe(200);
    expect(DeviceInfo.parse(approved.json).approved).toBe(true);
    await peer.waitForPeers((p) => p.has(laptop.id));
    expect((await askUdp(t.broker.dnsPort!, name)).answers).toEqual([
      expect.objectContaining({ type: 'A', data: enrolled.address }),
    ]);
    const netmap = await laptop.connect();
    expect(netmap.peers.map((p) => p.name)).toContain('server');
    // Approving again changes nothing (and records nothing more).
    expect(
      (await t.api('POST', `${API_PATHS.devices}/members-laptop/approval`, { token: t.ownerToken })).status,
    ).toBe(200);
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=device.approved`, { token: t.ownerToken })).json,
    );
    expect(log.events.map((e) => [e.target.name, e.actor.email])).toEqual([
      ['members-laptop', t.broker.bootstrap!.ownerEmail],
    ]);
    laptop.close();
    peer.close();
  });

  it('re-key over HTTP: an admin gives a device that lost its key the new one; members, bad keys and taken keys are refused', async () => {
    const device = t.device();
    await device.enroll(t.setupKey, { name: 'lost-key' });
    const other = t.device();
    await other.enroll(t.setupKey, { name: 'keeps-key' });
    const rekey = (token: string, publicKey: unknown) =>
      t.api('PUT', `${API_PATHS.devices}/lost-key/key`, { token, body: { publicKey } });
    const fresh = t.device().keys.publicKey;
    expect((await rekey(member, fresh)).status).toBe(403);
    expect((await rekey(t.ownerToken, 'not-a-key')).status).toBe(400);
    expect((await rekey(t.ownerToken, other.keys.publicKey)).status).toBe(409);
    const done = await rekey(t.ownerToken, fresh);
    expect(done.status).toBe(200);
    expect(DeviceInfo.parse(done.json).publicKey).toBe(fresh);
    const log = AuditPage.parse(
      (await t.api('GET', `${API_PATHS.audit}?action=device.rekeyed&q=lost-key`, { token: t.ownerToken }))
        .json,
    );
    expect(log.events.map((e) => e.actor.email)).toEqual([t.broker.bootstrap!.ownerEmail]);
  });

  it('a device an admin approves at sign-in needs nothing more', async () => {
    const device = t.device();
    const { decided, enrolled } = await signIn(device, 'admins-laptop', t.ownerToken);
    expect(decided).toMatchObject({ approved: true, awaitingAdmin: false });
    expect(enrolled.approved).toBe(true);
    await device.connect();
    device.close();
  });
});
