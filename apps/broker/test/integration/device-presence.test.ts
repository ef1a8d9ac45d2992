import { generateKeyPair } from '@trellis/crypto';
import { DevicePresence } from '../../src/services/device-presence';
import { type Backend, createBackend } from '../support/backends';
import { type LeaseWorld, type Node, openWorld } from '../support/lease-world';

jest.setTimeout(60_000);

describe.each(['pglite', 'postgres'] as const)('device online state on %s', (kind) => {
  let backend: Backend;
  let world: LeaseWorld;
  let node: Node;

  beforeAll(async () => {
    backend = await createBackend(kind);
    world = await openWorld(backend);
    node = await world.node();
  });
  afterAll(async () => {
    await world?.close();
    await backend?.dispose();
  });

  it('sets the connection and bumps the serial in one statement, returning the whole row', async () => {
    const { accountId, ids } = await world.account(1);
    const before = await world.serialOf(accountId);
    const change = await new DevicePresence(world.db).online(ids[0]!, 'i1:c1');
    expect(change?.serial).toBe(before + 1);
    expect(change?.row).toMatchObject({ id: ids[0], accountId, connectionId: 'i1:c1', hostname: 'h0' });
    expect(change?.row.lastSeen).toBeInstanceOf(Date);
    expect(change?.row.endpoints).toEqual([]);
    expect(await world.serialOf(accountId)).toBe(before + 1);
    expect(await world.connectionOf(ids[0]!)).toBe('i1:c1');
  });

  it('with a key, goes online only while the device still has that key; finds it for a hello', async () => {
    const { accountId, ids } = await world.account(1);
    const presence = new DevicePresence(world.db);
    const found = await presence.forAuth(ids[0]!);
    expect(found?.device).toMatchObject({ id: ids[0], accountId, connectionId: null });
    expect(found?.accountName).toMatch(/^acct-/);
    expect(await presence.forAuth('00000000-0000-4000-8000-000000000000')).toBeUndefined();
    const before = await world.serialOf(accountId);
    expect(await presence.online(ids[0]!, 'i1:old-key', generateKeyPair().publicKey)).toBeUndefined();
    expect(await world.connectionOf(ids[0]!)).toBeNull();
    expect(await world.serialOf(accountId)).toBe(before);
    const change = await presence.online(ids[0]!, 'i1:right-key', found!.device.publicKey);
    expect(change).toMatchObject({ serial: before + 1, row: { connectionId: 'i1:right-key' } });
    expect((await presence.offline(ids[0]!, 'i1:right-key'))?.row.connectionId).toBeNull();
    expect(await world.serialOf(accountId)).toBe(before + 2);
  });

  it('changes nothing, serial included, when no device matches', async () => {
    const { accountId, ids } = await world.account(1);
    const before = await world.serialOf(accountId);
    await node.services.devices.markOnline(ids[0]!, 'i1:held');
    node.bus.published.length = 0;
    // A replaced connection cannot take the device offline.
    await node.services.devices.markOffline(ids[0]!, 'i1:stale');
    expect(await world.connectionOf(ids[0]!)).toBe('i1:held');
    expect(await world.serialOf(accountId)).toBe(before + 1);
    expect(node.bus.published).toEqual([]);
    expect(await node.services.devices.markOnline('00000000-0000-4000-8000-000000000000', 'i1:x')).toBe(
      undefined,
    );
  });

  it('gives each of many concurrent changes its own serial and one upsert', async () => {
    const { accountId, ids } = await world.account(40);
    const before = await world.serialOf(accountId);
    node.bus.published.length = 0;
    const serials = await Promise.all(ids.map((id, i) => node.services.devices.markOnline(id, `i1:c${i}`)));
    expect([...serials].sort((a, b) => a! - b!)).toEqual(ids.map((_, i) => before + 1 + i));
    await Promise.all(ids.map((id, i) => node.services.devices.markOffline(id, `i1:c${i}`)));
    expect(await world.serialOf(accountId)).toBe(before + 2 * ids.length);
    const upserts = node.bus.published.filter((e) => e.kind === 'device-upsert');
    expect(upserts).toHaveLength(2 * ids.length);
    const offline = upserts.filter((e) => e.kind === 'device-upsert' && !e.device.online);
    expect(new Set(offline.map((e) => e.kind === 'device-upsert' && e.device.id))).toEqual(new Set(ids));
  });
});
