import type { IncomingMessage } from 'node:http';
import { Body, Controller, Delete, Get, Inject, Param, Post, Req } from '@nestjs/common';
import {
  API_PATHS,
  CreateSetupKeyRequest,
  type CreateSetupKeyResponse,
  type SetupKeyInfo,
} from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseUuid, parseWith } from './validation';

@Controller(API_PATHS.setupKeys)
export class SetupKeysController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<SetupKeyInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.setupKeys.list(user.accountId);
  }

  @Post()
  async create(@Req() req: IncomingMessage, @Body() body: unknown): Promise<CreateSetupKeyResponse> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const opts = parseWith(CreateSetupKeyRequest, body);
    // Tags: the creator must own them; the devices the key enrolls belong to the creator.
    const creator = { email: user.email, role: user.role, userId: user.userId };
    return this.ctx.services.setupKeys.create(user.accountId, opts, creator, userActor(user, req));
  }

  @Delete(':id')
  async revoke(@Req() req: IncomingMessage, @Param('id') id: string): Promise<SetupKeyInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const keyId = parseUuid(id, 'setup key id');
    return this.ctx.services.setupKeys.revoke(user.accountId, keyId, userActor(user, req));
  }
}
