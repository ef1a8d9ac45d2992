import { DeviceInfo, DeviceState, MAX_VIRTUAL_DEVICES_PER_GATEWAY } from '@trellis/proto';
import { and, eq } from 'drizzle-orm';
import { CLI_ACTOR } from '../../src/audit/audit-events';
import { auditEvents, devices } from '../../src/db/schema';
import { OPERATOR } from '../../src/policy/tag-rules';
import type { Services } from '../../src/services/services';
import { BACKENDS, type Backend, createBackend } from '../support/backends';
import { type LeaseWorld, openWorld, type RecordingBus } from '../support/lease-world';

jest.setTimeout(60_000);

const TAG_POLICY = `{
  "tagOwners": { "tag:cams": ["user:ops@example.test"], "tag:printers": [] },
  "rules": [{ "src": ["*"], "dst": ["*"] }]
}`;

/** Virtual devices (issue 14) at the service level: storage, rules, events, removal with the gateway. */
describe.each(BACKENDS)('virtual devices on %s', (kind) => {
  let backend: Backend;
  let world: LeaseWorld;
  let services: Services;
  let bus: RecordingBus;
  let account: { id: string; name: string };
  let gw: string;
  let other: string;

  beforeAll(async () => {
    backend = await createBackend(kind);
    world = await openWorld(backend);
    ({ services, bus } = await world.node());
    const { accountId, ids } = await world.account(2);
    const row = await services.accounts.byId(accountId);
    account = { id: accountId, name: row.name };
    [gw, other] = ids as [string, string];
    await services.devices.rename(account.id, account.name, gw, 'gw');
    await services.devices.rename(account.id, account.name, other, 'site-b');
  });
  afterAll(async () => {
    await world?.close();
    await backend?.dispose();
  });

  const add = (name: string, lanAddress: string, gateway = 'gw', tags?: string[]) =>
    services.virtualDevices.create(
      account,
      OPERATOR,
      { name, lanAddress, gateway, ...(tags ? { tags } : {}) },
      CLI_ACTOR,
    );
  const rowOf = async (id: string) => (await world.db.select().from(devices).where(eq(devices.id, id)))[0];

  it('creates a keyless, approved device behind the gateway and publishes its state with a new serial', async () => {
    const before = await world.serialOf(account.id);
    const from = bus.published.length;
    const info = DeviceInfo.parse(await add('printer', '192.168.1.100'));
    expect(info).toMatchObject({
      name: 'printer',
      dnsName: `printer.${account.name}.test.internal`,
      publicKey: null,
      via: gw,
      lanAddress: '192.168.1.100',
      endpoints: [],
      online: false,
      approved: true,
      os: 'virtual',
    });
    expect(info.address).toMatch(/^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);
    const events = bus.published.slice(from);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event.kind).toBe('device-upsert');
    if (event.kind !== 'device-upsert') return;
    expect(event.serial).toBe(before + 1);
    const state = DeviceState.parse(event.device);
    expect(state).toEqual({
      id: info.id,
      name: 'printer',
      address: info.address,
      via: gw,
      lanAddress: '192.168.1.100',
      endpoints: [],
      online: false,
    });
    // What a hub loads for the account says the same.
    const loaded = await services.devices.loadAccount(account.id);
    expect(loaded.devices.find((d) => d.id === info.id)).toEqual(state);
    const [audit] = await world.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, 'device.virtual-added'), eq(auditEvents.targetId, info.id)));
    expect(audit).toMatchObject({
      actorKind: 'cli',
      targetName: 'printer',
      details: {
        name: 'printer',
        lanAddress: '192.168.1.100',
        gateway: { id: gw, name: 'gw' },
        address: info.address,
      },
    });
  });

  it('the same LAN address behind another gateway is another device with its own address', async () => {
    const a = await services.devices.one(account.id, account.name, 'printer');
    const b = await add('printer-b', '192.168.1.100', 'site-b');
    expect(b.via).toBe(other);
    expect(b.address).not.toBe(a.address);
  });

  it('refuses a taken name (as rename does), a LAN address taken behind the gateway, and bad input', async () => {
    await expect(add('printer', '192.168.1.101')).rejects.toMatchObject({
      status: 409,
      message: `a device named "printer" is already in account ${account.name}`,
    });
    await expect(add('gw', '192.168.1.101')).rejects.toMatchObject({ status: 409 });
    await expect(add('printer2', '192.168.1.100')).rejects.toMatchObject({
      status: 409,
      message: '192.168.1.100 behind gateway gw is the virtual device "printer" already',
    });
    await expect(add('printer3', '100.64.0.9')).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining('lanAddress: must not be inside the overlay'),
    });
    await expect(add('Bad_Name', '192.168.1.102')).rejects.toMatchObject({ status: 400 });
  });

  it('refuses an unknown gateway, a virtual device as gateway and a gateway that waits for approval', async () => {
    await expect(add('cam', '192.168.1.50', 'nowhere')).rejects.toMatchObject({
      status: 404,
      message: `no gateway device "nowhere" in account ${account.name}`,
    });
    await expect(add('cam', '192.168.1.50', 'printer')).rejects.toMatchObject({
      status: 409,
      message: 'device printer is a virtual device itself: it cannot be a gateway',
    });
    await world.db.update(devices).set({ approved: false }).where(eq(devices.id, other));
    try {
      await expect(add('cam', '192.168.1.50', 'site-b')).rejects.toMatchObject({ status: 409 });
    } finally {
      await world.db.update(devices).set({ approved: true }).where(eq(devices.id, other));
    }
    expect(await world.db.select().from(devices).where(eq(devices.name, 'cam'))).toEqual([]);
  });

  it('checks tags as SetDeviceTags does: declared in the policy and owned by the caller', async () => {
    await services.policy.apply(account.id, TAG_POLICY, 'test');
    await expect(add('cam', '192.168.1.50', 'gw', ['tag:nope'])).rejects.toMatchObject({ status: 400 });
    const member = { email: 'someone@example.test', role: 'admin' as const };
    await expect(
      services.virtualDevices.create(
        account,
        member,
        { name: 'cam', lanAddress: '192.168.1.50', gateway: 'gw', tags: ['tag:cams'] },
        CLI_ACTOR,
      ),
    ).rejects.toMatchObject({ status: 403 });
    const ops = { email: 'ops@example.test', role: 'member' as const };
    const cam = await services.virtualDevices.create(
      account,
      ops,
      { name: 'cam', lanAddress: '192.168.1.50', gateway: 'gw', tags: ['tag:cams'] },
      CLI_ACTOR,
    );
    expect(cam.tags).toEqual(['tag:cams']);
  });

  it('refuses re-key and approval of a virtual device; rename and tags work as for any device', async () => {
    await expect(
      services.devices.rekey(account.id, account.name, 'printer', `${'A'.repeat(43)}=`, CLI_ACTOR),
    ).rejects.toMatchObject({
      status: 409,
      message: expect.stringContaining('device printer is a virtual device: it has no key'),
    });
    await expect(services.devices.approve(account.id, account.name, 'printer')).rejects.toMatchObject({
      status: 409,
    });
    const renamed = await services.devices.rename(account.id, account.name, 'printer', 'laser');
    expect(renamed).toMatchObject({ name: 'laser', via: gw, lanAddress: '192.168.1.100' });
    const tagged = await services.routes.setTags(
      account.id,
      account.name,
      'laser',
      ['tag:printers'],
      OPERATOR,
      CLI_ACTOR,
    );
    expect(tagged.tags).toEqual(['tag:printers']);
  });

  it('a hello naming a virtual device finds no device to authenticate', async () => {
    const laser = await services.devices.one(account.id, account.name, 'laser');
    expect(await services.devices.forAuth(laser.id)).toBeUndefined();
    expect(await services.devices.markOnline(laser.id, 'x:1')).toBeUndefined();
    expect((await rowOf(laser.id))?.connectionId).toBeNull();
  });

  it('the database refuses a row that mixes a key with a gateway, or a gateway without a LAN address', async () => {
    const base = { accountId: account.id, hostname: 'h', os: 'linux' };
    await expect(
      world.db.insert(devices).values({
        ...base,
        name: 'mixed',
        address: '100.64.200.1',
        publicKey: `${'B'.repeat(43)}=`,
        viaDeviceId: gw,
        lanAddress: '192.168.1.7',
      }),
    ).rejects.toThrow();
    await expect(
      world.db.insert(devices).values({ ...base, name: 'nolan', address: '100.64.200.2', viaDeviceId: gw }),
    ).rejects.toThrow();
  });

  it(`refuses more than ${MAX_VIRTUAL_DEVICES_PER_GATEWAY} virtual devices behind one gateway`, async () => {
    const { ids } = await world.account(1);
    const gateway = (await rowOf(ids[0]!))!;
    const full = Array.from({ length: MAX_VIRTUAL_DEVICES_PER_GATEWAY }, (_, i) => ({
      accountId: gateway.accountId,
      name: `host-${i}`,
      hostname: 'h',
      os: 'virtual',
      address: `100.65.${Math.floor(i / 200)}.${(i % 200) + 1}`,
      viaDeviceId: gateway.id,
      lanAddress: `10.9.${Math.floor(i / 200)}.${(i % 200) + 1}`,
    }));
    await world.db.insert(devices).values(full);
    const acct = await services.accounts.byId(gateway.accountId);
    await expect(
      services.virtualDevices.create(
        { id: acct.id, name: acct.name },
        OPERATOR,
        { name: 'one-more', lanAddress: '10.9.9.9', gateway: gateway.id },
        CLI_ACTOR,
      ),
    ).rejects.toMatchObject({ status: 409, message: expect.stringContaining('serves 256 virtual devices') });
  });

  it('removing the gateway removes its virtual devices first, each with its own serial, addresses held back', async () => {
    const served = await world.db.select().from(devices).where(eq(devices.viaDeviceId, gw));
    expect(served.map((r) => r.name).sort()).toEqual(['cam', 'laser']);
    const from = bus.published.length;
    const before = await world.serialOf(account.id);
    await services.devices.remove(account.id, account.name, 'gw', CLI_ACTOR);
    const removed = bus.published
      .slice(from)
      .map((e) => (e.kind === 'device-remove' ? [e.deviceId, e.serial] : e.kind));
    const vds = served.map((r) => r.id).sort();
    expect(removed).toEqual([
      [vds[0], before + 1],
      [vds[1], before + 2],
      [gw, before + 3],
    ]);
    expect(await world.db.select().from(devices).where(eq(devices.viaDeviceId, gw))).toEqual([]);
    const held = await services.devices.heldAddresses(account.id);
    for (const r of served) expect(held).toContain(r.address);
    const audits = await world.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, 'device.removed'), eq(auditEvents.accountId, account.id)));
    expect(audits.find((a) => a.targetName === 'laser')?.details).toEqual({
      address: served.find((r) => r.name === 'laser')!.address,
      lanAddress: '192.168.1.100',
      gateway: { id: gw, name: 'gw' },
      withGateway: true,
    });
  });

  it('a virtual device is removed by name like any device; its gateway stays', async () => {
    const from = bus.published.length;
    const removed = await services.devices.remove(account.id, account.name, 'printer-b', CLI_ACTOR);
    expect(removed).toMatchObject({ name: 'printer-b', via: other });
    expect(bus.published.slice(from).map((e) => e.kind)).toEqual(['device-remove']);
    expect(await rowOf(other)).toBeDefined();
  });
});
