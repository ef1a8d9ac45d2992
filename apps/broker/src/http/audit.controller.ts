import type { IncomingMessage } from 'node:http';
import { Controller, Get, Inject, Query, Req } from '@nestjs/common';
import { API_PATHS, type AuditPage, AuditQuery } from '@trellis/proto';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith } from './validation';

/** The account's audit log, a page at a time: owners and admins only, only their own account's. */
@Controller(API_PATHS.audit)
export class AuditController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async page(@Req() req: IncomingMessage, @Query() query: unknown): Promise<AuditPage> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    return this.ctx.services.audit.page(user.accountId, parseWith(AuditQuery, query ?? {}, 'query'));
  }
}
