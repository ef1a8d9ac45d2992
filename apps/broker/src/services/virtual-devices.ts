import { CreateVirtualDeviceRequest, type DeviceInfo, MAX_VIRTUAL_DEVICES_PER_GATEWAY } from '@trellis/proto';
import { and, count, eq } from 'drizzle-orm';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit-events';
import { recordAudit } from '../audit/audit-log';
import { withConflictRetry } from '../db/conflict-retry';
import type { Db } from '../db/database';
import { type DeviceRow, devices } from '../db/schema';
import { badRequest, conflict, notFound } from '../domain/errors';
import { currentParsedPolicy } from '../policy/policy-store';
import { checkTags, type TagActor } from '../policy/tag-rules';
import { checkNameFree, deviceNamed } from './device-edits';
import { addressScope } from './device-enrollment';
import { toDeviceState } from './device-state';
import type { DevicesService } from './devices.service';
import type { OverlayAddresses } from './overlay-addresses';
import { bumpSerial, lockAccountRow, type Tx, withUniqueRetry } from './tx';

/** What a virtual device shows where a real one shows its operating system. */
export const VIRTUAL_OS = 'virtual';

/** The account a virtual device is registered in. */
export interface AccountRef {
  id: string;
  name: string;
}

/**
 * Virtual devices (issue 14): LAN hosts an admin registers behind a gateway device. Each is a
 * devices row without a key, with its gateway (via_device_id) and LAN address; it gets a mesh
 * address from the account's allocator and a name like any device. Removal, rename and tags go
 * through DevicesService as for any device; removing the gateway removes its virtual devices.
 */
export class VirtualDevicesService {
  constructor(
    private readonly db: Db,
    private readonly devices: DevicesService,
    private readonly addresses: OverlayAddresses,
  ) {}

  /**
   * Registers `input.lanAddress` behind the gateway `input.gateway` (id or name) as a new device,
   * approved at once (only admins register them). Tags must be owned by `actor` as in SetDeviceTags.
   */
  async create(
    account: AccountRef,
    actor: TagActor,
    input: CreateVirtualDeviceRequest,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<DeviceInfo> {
    const parsed = CreateVirtualDeviceRequest.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw badRequest(`${issue?.path.join('.') || 'virtual device'}: ${issue?.message ?? 'invalid'}`);
    }
    // A concurrent enrollment may take the name or address first (unique retry, then a clear 409);
    // lock waits are ordered like every device writer's, the conflict retry is a backstop.
    const { row, serial } = await withUniqueRetry(5, () =>
      withConflictRetry(() => this.db.transaction((tx) => this.insert(tx, account, actor, parsed.data, by))),
    );
    await this.devices.publishUpserts([{ accountId: account.id, serial, device: toDeviceState(row) }]);
    return this.devices.toInfo(row, account.name);
  }

  private async insert(
    tx: Tx,
    account: AccountRef,
    actor: TagActor,
    input: CreateVirtualDeviceRequest,
    by: Actor,
  ): Promise<{ row: DeviceRow; serial: number }> {
    // The gateway's row first, then the account's (as every device writer): creations behind one
    // gateway take turns, so the count and the LAN address check below cannot both pass twice.
    const gateway = await lockGateway(tx, account, input.gateway);
    await lockAccountRow(tx, account.id);
    const [served] = await tx.select({ n: count() }).from(devices).where(eq(devices.viaDeviceId, gateway.id));
    if ((served?.n ?? 0) >= MAX_VIRTUAL_DEVICES_PER_GATEWAY) {
      throw conflict(
        `gateway ${gateway.name} serves ${MAX_VIRTUAL_DEVICES_PER_GATEWAY} virtual devices already (the most one may)`,
      );
    }
    const [sameLan] = await tx
      .select({ name: devices.name })
      .from(devices)
      .where(and(eq(devices.viaDeviceId, gateway.id), eq(devices.lanAddress, input.lanAddress)));
    if (sameLan) {
      throw conflict(
        `${input.lanAddress} behind gateway ${gateway.name} is the virtual device "${sameLan.name}" already`,
      );
    }
    await checkNameFree(tx, account.id, account.name, input.name);
    const tags = [...new Set(input.tags ?? [])].sort();
    const policy = await currentParsedPolicy(tx, account.id);
    checkTags(policy, actor, tags);
    const address = await this.addresses.pick(
      tx,
      account.id,
      // Stable per gateway and LAN host: registering the same host again tends to get the same address.
      { seed: `virtual:${gateway.id}:${input.lanAddress}` },
      await addressScope(tx, account.id, null),
    );
    const [row] = (await tx
      .insert(devices)
      .values({
        accountId: account.id,
        name: input.name,
        hostname: input.lanAddress,
        os: VIRTUAL_OS,
        publicKey: null,
        address,
        viaDeviceId: gateway.id,
        lanAddress: input.lanAddress,
        tags,
        approved: true,
      })
      .returning()) as [DeviceRow];
    await recordAudit(tx, by, {
      action: 'device.virtual-added',
      accountId: account.id,
      target: { kind: 'device', id: row.id, name: row.name },
      details: {
        name: row.name,
        lanAddress: input.lanAddress,
        gateway: { id: gateway.id, name: gateway.name },
        address,
        tags,
      },
    });
    return { row, serial: await bumpSerial(tx, account.id) };
  }
}

/** The gateway named by id or name, locked: a real device of the account, in the mesh. */
async function lockGateway(tx: Tx, account: AccountRef, idOrName: string): Promise<DeviceRow> {
  const [gateway] = await tx.select().from(devices).where(deviceNamed(account.id, idOrName)).for('update');
  if (!gateway) throw notFound(`no gateway device "${idOrName}" in account ${account.name}`);
  if (gateway.viaDeviceId !== null) {
    throw conflict(`device ${gateway.name} is a virtual device itself: it cannot be a gateway`);
  }
  if (!gateway.approved) {
    throw conflict(`gateway ${gateway.name} waits for an admin's approval: approve it first`);
  }
  return gateway;
}
