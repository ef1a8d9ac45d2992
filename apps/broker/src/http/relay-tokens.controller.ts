import type { IncomingMessage } from 'node:http';
import { Body, Controller, Delete, Get, Inject, Param, Post, Req } from '@nestjs/common';
import {
  API_PATHS,
  CreateRelayTokenRequest,
  type CreateRelayTokenResponse,
  type RelayTokenInfo,
} from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseUuid, parseWith } from './validation';

/** The account's private relay tokens (shared relays are the operator's: admin CLI only). */
@Controller(API_PATHS.relayTokens)
export class RelayTokensController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<RelayTokenInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    return this.ctx.services.relayTokens.list(user.accountId);
  }

  @Post()
  async create(@Req() req: IncomingMessage, @Body() body: unknown): Promise<CreateRelayTokenResponse> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { name } = parseWith(CreateRelayTokenRequest, body);
    return this.ctx.services.relayTokens.create(user.accountId, name, userActor(user, req));
  }

  @Delete(':id')
  async revoke(@Req() req: IncomingMessage, @Param('id') id: string): Promise<RelayTokenInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const tokenId = parseUuid(id, 'relay token id');
    return this.ctx.services.relayTokens.revoke(tokenId, user.accountId, userActor(user, req));
  }
}
