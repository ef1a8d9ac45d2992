import type { IncomingMessage } from 'node:http';
import { Controller, Get, Inject, Req } from '@nestjs/common';
import { API_PATHS, type RelayStatusInfo } from '@trellis/proto';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';

/** Relays that may serve the caller's account: its private ones and the shared ones. */
@Controller(API_PATHS.relays)
export class RelaysController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get()
  async list(@Req() req: IncomingMessage): Promise<RelayStatusInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.ctx.services.relays.list(user.accountId);
  }
}
