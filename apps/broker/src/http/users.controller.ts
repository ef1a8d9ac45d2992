import type { IncomingMessage } from 'node:http';
import { Body, Controller, Delete, Get, Inject, Param, Post, Put, Req } from '@nestjs/common';
import {
  type AccountUserInfo,
  API_PATHS,
  CreateUserRequest,
  type RemovedUser,
  SetUserRoleRequest,
} from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseUuid, parseWith } from './validation';

/** The account's users (owners and admins only; the rules are AccountUsersService's). */
@Controller(API_PATHS.users)
export class UsersController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<AccountUserInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.accountUsers.list(user);
  }

  @Post()
  async create(@Req() req: IncomingMessage, @Body() body: unknown): Promise<AccountUserInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    const { email, role, password } = parseWith(CreateUserRequest, body);
    const created = await this.ctx.services.accountUsers.create(
      user,
      email,
      role,
      password,
      userActor(user, req),
    );
    this.ctx.logger.info({ by: user.email, user: created.email, role }, 'user added');
    return created;
  }

  @Put(':id/role')
  async setRole(
    @Req() req: IncomingMessage,
    @Param('id') id: string,
    @Body() body: unknown,
  ): Promise<AccountUserInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    const { role } = parseWith(SetUserRoleRequest, body);
    const changed = await this.ctx.services.accountUsers.setRole(
      user,
      parseUuid(id, 'user id'),
      role,
      userActor(user, req),
    );
    this.ctx.logger.info({ by: user.email, user: changed.email, role }, 'user role changed');
    return changed;
  }

  @Delete(':id')
  async remove(@Req() req: IncomingMessage, @Param('id') id: string): Promise<RemovedUser> {
    const user = await currentUser(req, this.ctx.services.users);
    const removed = await this.ctx.services.accountUsers.remove(
      user,
      parseUuid(id, 'user id'),
      userActor(user, req),
    );
    const { sessionsEnded, devicesRemoved, setupKeysRevoked } = removed;
    this.ctx.logger.info(
      { by: user.email, user: removed.user.email, sessionsEnded, devicesRemoved, setupKeysRevoked },
      'user removed',
    );
    return removed;
  }
}
