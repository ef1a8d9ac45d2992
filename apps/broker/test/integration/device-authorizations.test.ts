import { generateKeyPair } from '@trellis/crypto';
import { eq } from 'drizzle-orm';
import { devices } from '../../src/db/schema';
import { DomainError } from '../../src/domain/errors';
import {
  DEVICE_AUTH_INTERVAL_SECONDS,
  DEVICE_AUTH_TTL_SECONDS,
  DeviceAuthorizationsService,
} from '../../src/services/device-authorizations.service';
import type { UserContext } from '../../src/services/users.service';
import { BACKENDS, createBackend } from '../support/backends';
import { type LeaseWorld, openWorld } from '../support/lease-world';

jest.setTimeout(60_000);

/** The RFC 8628 error a poll failed with (or 'granted'). */
async function pollOutcome(service: DeviceAuthorizationsService, deviceCode: string): Promise<string> {
  try {
    await service.poll(deviceCode);
    return 'granted';
  } catch (err) {
    if (err instanceof DomainError) return err.kind;
    throw err;
  }
}

const bare = (userCode: string) => userCode.replace('-', '');

describe.each(BACKENDS)('device authorization grant (RFC 8628) on %s', (kind) => {
  let world: LeaseWorld;
  let dispose: () => Promise<void>;
  let clock: number;
  let service: DeviceAuthorizationsService;
  let owner: UserContext;

  beforeEach(async () => {
    const backend = await createBackend(kind);
    world = await openWorld(backend);
    dispose = async () => {
      await world.close();
      await backend.dispose();
    };
    const node = await world.node();
    clock = Date.parse('2026-12-06T10:00:00Z');
    service = new DeviceAuthorizationsService(
      world.db,
      node.services.devices,
      { intervalSeconds: DEVICE_AUTH_INTERVAL_SECONDS },
      () => clock,
    );
    const { account, owner: o } = await node.services.accounts.create(
      'acme',
      'alice@acme.test',
      'pw-owner-1234',
    );
    owner = { userId: o.id, email: o.email, role: 'owner', accountId: account.id, accountName: 'acme' };
  });
  afterEach(() => dispose());

  const device = (publicKey = generateKeyPair().publicKey) => ({
    publicKey,
    name: 'laptop',
    hostname: 'laptop.local',
    os: 'linux 6.1',
    endpoints: ['192.168.1.5:51820'],
    proven: false,
  });
  const later = (seconds: number) => {
    clock += seconds * 1000;
  };

  it('pending until approved; the approval enrolls the device as the approver’s; the enrollment is handed out once', async () => {
    const started = await service.start(device(), '198.51.100.7');
    expect(started.userCode).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(started.deviceCode).toMatch(/^tdev_/);
    expect(started).toMatchObject({
      expiresIn: DEVICE_AUTH_TTL_SECONDS,
      interval: DEVICE_AUTH_INTERVAL_SECONDS,
    });
    expect(await pollOutcome(service, started.deviceCode)).toBe('authorization_pending');

    const info = await service.describe(bare(started.userCode));
    expect(info).toMatchObject({
      userCode: started.userCode,
      name: 'laptop',
      os: 'linux 6.1',
      requestedFrom: '198.51.100.7',
    });

    const enrolled = await service.decide(owner, bare(started.userCode), true);
    expect(enrolled).toMatchObject({
      name: 'laptop',
      accountName: 'acme',
      dnsName: 'laptop.acme.test.internal',
    });
    const [row] = await world.db.select().from(devices).where(eq(devices.id, enrolled!.deviceId));
    expect(row).toMatchObject({ userEmail: 'alice@acme.test', tags: [], endpoints: ['192.168.1.5:51820'] });

    later(DEVICE_AUTH_INTERVAL_SECONDS);
    const granted = await service.poll(started.deviceCode);
    expect(granted.enrolled).toMatchObject({ deviceId: enrolled!.deviceId, address: enrolled!.address });
    later(DEVICE_AUTH_INTERVAL_SECONDS);
    expect(await pollOutcome(service, started.deviceCode)).toBe('expired_token');
    // Decided: the code no longer names a pending request.
    await expect(service.describe(bare(started.userCode))).rejects.toMatchObject({ status: 404 });
    await expect(service.decide(owner, bare(started.userCode), true)).rejects.toMatchObject({ status: 404 });
  });

  it('a poll faster than the interval gets slow_down, and the interval grows by 5 s each time', async () => {
    const { deviceCode } = await service.start(device(), '198.51.100.7');
    expect(await pollOutcome(service, deviceCode)).toBe('authorization_pending');
    later(1);
    expect(await pollOutcome(service, deviceCode)).toBe('slow_down');
    later(DEVICE_AUTH_INTERVAL_SECONDS);
    // Now 10 s are asked for: 5 s is too fast again.
    expect(await pollOutcome(service, deviceCode)).toBe('slow_down');
    later(15);
    expect(await pollOutcome(service, deviceCode)).toBe('authorization_pending');
    // A poll slightly early (timers are not exact) still counts as on time.
    later(15 - 0.5);
    expect(await pollOutcome(service, deviceCode)).toBe('authorization_pending');
  });

  it('denied: the device gets access_denied and nothing is enrolled', async () => {
    const { deviceCode, userCode } = await service.start(device(), '198.51.100.7');
    expect(await service.decide(owner, bare(userCode), false)).toBeNull();
    later(DEVICE_AUTH_INTERVAL_SECONDS);
    expect(await pollOutcome(service, deviceCode)).toBe('access_denied');
    expect(await world.db.select().from(devices)).toHaveLength(0);
  });

  it('codes expire: no approval, expired_token for the device, and expired rows are purged by the next start', async () => {
    const { deviceCode, userCode } = await service.start(device(), '198.51.100.7');
    later(DEVICE_AUTH_TTL_SECONDS);
    await expect(service.decide(owner, bare(userCode), true)).rejects.toMatchObject({ status: 404 });
    expect(await pollOutcome(service, deviceCode)).toBe('expired_token');
    await service.start(device(), '198.51.100.8');
    later(1);
    // The first row is gone: its device code is unknown now, which the device is told the same way.
    expect(await pollOutcome(service, deviceCode)).toBe('expired_token');
    expect(await pollOutcome(service, 'tdev_unknown')).toBe('expired_token');
  });

  it('an approval late in the codes’ life still reaches the device: it has a full lifetime to collect it', async () => {
    const { deviceCode, userCode } = await service.start(device(), '198.51.100.7');
    later(DEVICE_AUTH_TTL_SECONDS - 2);
    await service.decide(owner, bare(userCode), true);
    later(60);
    // Another device's start purges expired rows: the approved one is not among them.
    await service.start(device(), '198.51.100.8');
    expect(await pollOutcome(service, deviceCode)).toBe('granted');
  });

  it('a key enrolled already is enrolled again only with proof of its private key', async () => {
    const first = await service.start(device(), '198.51.100.7');
    const { deviceId } = (await service.decide(owner, bare(first.userCode), true))!;
    const [row] = await world.db.select().from(devices).where(eq(devices.id, deviceId));
    const stolen = await service.start(
      { ...device(row!.publicKey!), endpoints: ['203.0.113.66:1'] },
      '203.0.113.66',
    );
    await expect(service.decide(owner, bare(stolen.userCode), true)).rejects.toMatchObject({
      status: 401,
      kind: 'proof_required',
    });
    const proven = await service.start({ ...device(row!.publicKey!), proven: true }, '198.51.100.7');
    const again = await service.decide(owner, bare(proven.userCode), true);
    expect(again).toMatchObject({ deviceId, reenrolled: true });
  });
});
