import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { API_PATHS } from '@trellis/proto';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { sessionToken } from './current-user';

/** Between comments that keep the stream (and any proxy) alive; each also checks the session. */
export const EVENTS_HEARTBEAT_MS = 15_000;

@Controller()
export class EventsController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** The dashboard's live view: device changes as server-sent events, while the session lasts. */
  @Get(API_PATHS.events)
  async stream(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    const token = sessionToken(req);
    const user = await this.ctx.services.users.authenticate(token);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    const stop = this.ctx.dashboardEvents.watch(user, res);
    const heartbeat = setInterval(() => {
      // A session that ended (signed out, expired, everywhere) ends its stream.
      this.ctx.services.users.authenticate(token).then(
        () => res.write(': ping\n\n'),
        () => res.end(),
      );
    }, this.ctx.eventsHeartbeatMs ?? EVENTS_HEARTBEAT_MS);
    res.on('close', () => {
      clearInterval(heartbeat);
      stop();
    });
  }
}
