import type { IncomingMessage } from 'node:http';
import { Controller, Delete, Get, Inject, Param, Req } from '@nestjs/common';
import { API_PATHS, type DeviceInfo } from '@trellis/proto';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseUuid } from './validation';

@Controller(API_PATHS.devices)
export class DevicesController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<DeviceInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.devices.list(user.accountId, user.accountName);
  }

  @Delete(':id')
  async remove(@Req() req: IncomingMessage, @Param('id') id: string): Promise<DeviceInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    return this.ctx.services.devices.remove(user.accountId, user.accountName, parseUuid(id, 'device id'));
  }
}
