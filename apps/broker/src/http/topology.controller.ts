import type { IncomingMessage } from 'node:http';
import { Controller, Get, Inject, Req } from '@nestjs/common';
import { API_PATHS, type TopologyResponse } from '@trellis/proto';
import { topologyFor } from '../topology/topology-view';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';

@Controller(API_PATHS.topology)
export class TopologyController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** The devices the user may see and the paths between them (changes: DASHBOARD_EVENTS.path). */
  @Get()
  async get(@Req() req: IncomingMessage): Promise<TopologyResponse> {
    const user = await currentUser(req, this.ctx.services.users);
    return topologyFor(user, this.ctx.services.devices, this.ctx.topology);
  }
}
