import type { IncomingMessage } from 'node:http';
import { Body, Controller, Delete, Get, Inject, Param, Put, Req } from '@nestjs/common';
import {
  API_PATHS,
  type DeviceInfo,
  DnsLabel,
  RenameDeviceRequest,
  SetDeviceTagsRequest,
} from '@trellis/proto';
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

  @Get()
  async list(@Req() req: IncomingMessage): Promise<DeviceInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    // Members see their own devices; owners and admins the whole account.
    const ownedBy = user.role === 'member' ? user.email : undefined;
    return this.ctx.services.devices.list(user.accountId, user.accountName, ownedBy);
  }

  @Delete(':id')
  async remove(@Req() req: IncomingMessage, @Param('id') id: string): Promise<DeviceInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    return this.ctx.services.devices.remove(user.accountId, user.accountName, parseUuid(id, 'device id'));
  }

  /** Replaces the device's tags; each tag added must be declared and owned by the caller (tagOwners). */
  @Put(':idOrName/tags')
  async setTags(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<DeviceInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const device = parseDeviceRef(idOrName);
    const { tags } = parseWith(SetDeviceTagsRequest, body);
    return this.ctx.services.devices.setTags(user.accountId, user.accountName, device, tags, {
      email: user.email,
      role: user.role,
    });
  }

  /** Gives the device another name (unique in the account); its DNS name follows at once. */
  @Put(':idOrName/name')
  async rename(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<DeviceInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { name } = parseWith(RenameDeviceRequest, body);
    return this.ctx.services.devices.rename(user.accountId, user.accountName, parseDeviceRef(idOrName), name);
  }
}
