import type { IncomingMessage } from 'node:http';
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Put,
  Query,
  Req,
} from '@nestjs/common';
import {
  API_PATHS,
  CreateVirtualDeviceRequest,
  type DeviceInfo,
  type DeviceListPage,
  DeviceListQuery,
  DnsLabel,
  RekeyDeviceRequest,
  RenameDeviceRequest,
  SetDeviceTagsRequest,
} from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { badRequest } from '../domain/errors';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseUuid, parseWith } from './validation';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseDeviceRef(value: string): string {
  if (UUID_RE.test(value) || DnsLabel.safeParse(value).success) return value;
  throw badRequest('device must be a device id (UUID) or a device name');
}

@Controller(API_PATHS.devices)
export class DevicesController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** The signed-in user, who must be an owner or admin of their account (every change here). */
  private async admin(req: IncomingMessage) {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    return user;
  }

  @Get()
  async list(@Req() req: IncomingMessage): Promise<DeviceInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    // Members see their own devices; owners and admins the whole account.
    const ownedBy = user.role === 'member' ? user.email : undefined;
    return this.ctx.services.devices.list(user.accountId, user.accountName, ownedBy);
  }

  /**
   * Registers a LAN host behind a gateway device as a virtual device (CreateVirtualDeviceRequest):
   * 201 with the new device. Declared before the `:idOrName` routes, which it must not fall into.
   */
  @Post('virtual')
  async addVirtual(@Req() req: IncomingMessage, @Body() body: unknown): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const input = parseWith(CreateVirtualDeviceRequest, body);
    const actor = { email: user.email, role: user.role };
    const account = { id: user.accountId, name: user.accountName };
    return this.ctx.services.virtualDevices.create(account, actor, input, userActor(user, req));
  }

  /** One device, by id or name (a member: only their own). */
  @Get(':idOrName')
  async one(@Req() req: IncomingMessage, @Param('idOrName') idOrName: string): Promise<DeviceInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    const ownedBy = user.role === 'member' ? user.email : undefined;
    return this.ctx.services.devices.one(user.accountId, user.accountName, parseDeviceRef(idOrName), ownedBy);
  }

  @Delete(':id')
  async remove(@Req() req: IncomingMessage, @Param('id') id: string): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const device = parseUuid(id, 'device id');
    return this.ctx.services.devices.remove(user.accountId, user.accountName, device, userActor(user, req));
  }

  /** Replaces the device's tags; each tag added must be declared and owned by the caller (tagOwners). */
  @Put(':idOrName/tags')
  async setTags(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const device = parseDeviceRef(idOrName);
    const { tags } = parseWith(SetDeviceTagsRequest, body);
    const actor = { email: user.email, role: user.role };
    const by = userActor(user, req);
    // Tags decide what the policy's autoApprovers approve: the routes follow in the same transaction.
    return this.ctx.services.routes.setTags(user.accountId, user.accountName, device, tags, actor, by);
  }

  /** Re-key: the new key of a device that lost its own (RekeyDeviceRequest). */
  @Put(':idOrName/key')
  async rekey(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const device = parseDeviceRef(idOrName);
    const { publicKey } = parseWith(RekeyDeviceRequest, body);
    const by = userActor(user, req);
    return this.ctx.services.devices.rekey(user.accountId, user.accountName, device, publicKey, by);
  }

  /** Lets a device that waits for an admin's approval into the mesh. */
  @Post(':idOrName/approval')
  @HttpCode(200)
  async approve(@Req() req: IncomingMessage, @Param('idOrName') idOrName: string): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const device = parseDeviceRef(idOrName);
    return this.ctx.services.devices.approve(user.accountId, user.accountName, device, userActor(user, req));
  }

  /** Gives the device another name (unique in the account); its DNS name follows at once. */
  @Put(':idOrName/name')
  async rename(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<DeviceInfo> {
    const user = await this.admin(req);
    const { name } = parseWith(RenameDeviceRequest, body);
    const device = parseDeviceRef(idOrName);
    const by = userActor(user, req);
    return this.ctx.services.devices.rename(user.accountId, user.accountName, device, name, by);
  }
}

/** The device list a page at a time, filtered by the broker: what the dashboard uses at any size. */
@Controller(API_PATHS.deviceList)
export class DeviceListController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async page(@Req() req: IncomingMessage, @Query() query: unknown): Promise<DeviceListPage> {
    const user = await currentUser(req, this.ctx.services.users);
    const ownedBy = user.role === 'member' ? user.email : undefined;
    const parsed = parseWith(DeviceListQuery, query, 'query');
    return this.ctx.services.devices.page(user.accountId, user.accountName, parsed, ownedBy);
  }
}
