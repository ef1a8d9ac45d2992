import type { IncomingMessage } from 'node:http';
import { Body, Controller, Get, Inject, Param, Put, Req } from '@nestjs/common';
import { API_PATHS, DnsLabel, type RouteList, SetApprovedRoutesRequest } from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { badRequest } from '../domain/errors';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith } from './validation';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Gateways' routes: every admin sees all of them, a member those of their own devices. */
@Controller(API_PATHS.routes)
export class RoutesController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<RouteList> {
    const user = await currentUser(req, this.ctx.services.users);
    const ownedBy = user.role === 'member' ? user.email : undefined;
    return { routes: await this.ctx.services.routes.list(user.accountId, ownedBy) };
  }
}

/** PUT /api/v1/devices/:idOrName/routes: the device's approved prefixes (owners and admins). */
@Controller(API_PATHS.devices)
export class DeviceRoutesController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Put(':idOrName/routes')
  async setApproved(
    @Req() req: IncomingMessage,
    @Param('idOrName') idOrName: string,
    @Body() body: unknown,
  ): Promise<RouteList> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    if (!UUID_RE.test(idOrName) && !DnsLabel.safeParse(idOrName).success) {
      throw badRequest('device must be a device id (UUID) or a device name');
    }
    const { approved } = parseWith(SetApprovedRoutesRequest, body);
    const by = userActor(user, req);
    const routes = await this.ctx.services.routes.setApproved(
      user.accountId,
      user.accountName,
      idOrName,
      approved,
      by,
    );
    return { routes };
  }
}
