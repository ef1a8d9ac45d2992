import type { IncomingMessage } from 'node:http';
import { Body, Controller, Get, Inject, Put, Req } from '@nestjs/common';
import { API_PATHS, type DnsSettings, SetDnsSettingsRequest } from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith } from './validation';

/**
 * The account's DNS: every signed-in user of the account reads its zone and switch; owners and
 * admins flip the switch, which every instance's DNS server answers by at once.
 */
@Controller(API_PATHS.dns)
export class DnsController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async get(@Req() req: IncomingMessage): Promise<DnsSettings> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.accounts.dnsSettings(user.accountId);
  }

  @Put()
  async set(@Req() req: IncomingMessage, @Body() body: unknown): Promise<DnsSettings> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { meshOnly } = parseWith(SetDnsSettingsRequest, body);
    await this.ctx.services.accounts.setDnsMeshOnly(user.accountName, meshOnly, userActor(user, req));
    return this.ctx.services.accounts.dnsSettings(user.accountId);
  }
}
