import type { IncomingMessage } from 'node:http';
import { Body, Controller, Get, Inject, Patch, Req } from '@nestjs/common';
import { type AccountSettings, AccountSettingsChange, API_PATHS } from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith } from './validation';

/** The account's settings: every user of the account reads them, owners and admins change them. */
@Controller(API_PATHS.accountSettings)
export class AccountSettingsController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async get(@Req() req: IncomingMessage): Promise<AccountSettings> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.accountSettings.get(user.accountId);
  }

  @Patch()
  async change(@Req() req: IncomingMessage, @Body() body: unknown): Promise<AccountSettings> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const change = parseWith(AccountSettingsChange, body);
    return this.ctx.services.accountSettings.change(user.accountId, change, userActor(user, req));
  }
}
