import type { IncomingMessage } from 'node:http';
import { Controller, Get, Inject, Req } from '@nestjs/common';
import { API_PATHS, type RelaySetupInfo, type RelayStatusInfo } from '@trellis/proto';
import { notFound } from '../domain/errors';
import { requireAdmin } from '../services/users.service';
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

  /** What an admin's `trellis-relay` command line needs besides its token: where and whom to trust. */
  @Get('setup')
  async setup(@Req() req: IncomingMessage): Promise<RelaySetupInfo> {
    requireAdmin(await currentUser(req, this.ctx.services.users));
    if (!this.ctx.tlsFingerprint) throw notFound('this broker does not know its certificate');
    return { brokerUrl: this.ctx.publicUrl ?? null, fingerprint: this.ctx.tlsFingerprint };
  }
}
