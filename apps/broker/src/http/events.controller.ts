import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { API_PATHS } from '@trellis/proto';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { sessionToken } from './current-user';
import { writeOpen } from './dashboard-events';

/** Between comments that keep the stream (and any proxy) alive; each also checks the session. */
export const EVENTS_HEARTBEAT_MS = 15_000;

@Controller()
export class EventsController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** The dashboard's live view: device and path changes as server-sent events, while the session lasts. */
  @Get(API_PATHS.events)
  async stream(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    let stop = (): void => {};
    let heartbeat: NodeJS.Timeout | undefined;
    const end = () => {
      clearInterval(heartbeat);
      stop();
    };
    // First of all: a client gone while its session is looked up must leave nothing running.
    res.on('close', end);
    const token = sessionToken(req);
    const user = await this.ctx.services.users.authenticate(token);
    if (res.destroyed) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 3000\n\n');
    // A member's own devices now: only their removals are told to them.
    const own =
      user.role === 'member'
        ? (await this.ctx.services.devices.list(user.accountId, user.accountName, user.email)).map(
            (d) => d.id,
          )
        : [];
    if (res.destroyed) return;
    stop = this.ctx.dashboardEvents.watch(user, res, own);
    heartbeat = setInterval(() => {
      // A session that ended (signed out, expired, everywhere, user removed) ends its stream; so
      // does a changed role: the dashboard reconnects and is shown what the new role may see.
      this.ctx.services.users.authenticate(token).then(
        (now) => {
          if (now.role === user.role) return writeOpen(res, ': ping\n\n');
          end();
          res.end();
        },
        () => {
          end();
          res.end();
        },
      );
    }, this.ctx.eventsHeartbeatMs ?? EVENTS_HEARTBEAT_MS);
  }
}
