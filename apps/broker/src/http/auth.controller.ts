import type { IncomingMessage, ServerResponse } from 'node:http';
import { Body, Controller, Delete, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { API_PATHS, LoginRequest, type LoginResponse, type WebSession } from '@trellis/proto';
import { clearedSessionCookie, csrfTokenFor, sessionCookie } from '../security/web-session';
import { SESSION_TTL_SECONDS } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser, sessionToken } from './current-user';
import { parseWith } from './validation';

@Controller()
export class AuthController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** For the CLI and scripts: the session token in the body, used as a bearer token. */
  @Post(API_PATHS.login)
  @HttpCode(200)
  login(@Body() body: unknown): Promise<LoginResponse> {
    const req = parseWith(LoginRequest, body);
    return this.ctx.services.users.login(req.email, req.password);
  }

  /** For the dashboard: the token goes into an HttpOnly cookie and never reaches the page's scripts. */
  @Post(API_PATHS.session)
  @HttpCode(200)
  async signIn(@Body() body: unknown, @Res({ passthrough: true }) res: ServerResponse): Promise<WebSession> {
    const req = parseWith(LoginRequest, body);
    const { token, expiresAt, user } = await this.ctx.services.users.login(req.email, req.password);
    res.setHeader('set-cookie', sessionCookie(token, SESSION_TTL_SECONDS));
    return { user, csrfToken: csrfTokenFor(token), expiresAt };
  }

  @Get(API_PATHS.session)
  async session(@Req() req: IncomingMessage): Promise<WebSession> {
    const token = sessionToken(req);
    const { user, expiresAt } = await this.ctx.services.users.session(token);
    const { userId: id, email, role, accountId, accountName } = user;
    return { user: { id, email, role, accountId, accountName }, csrfToken: csrfTokenFor(token), expiresAt };
  }

  @Delete(API_PATHS.session)
  @HttpCode(204)
  async signOut(@Req() req: IncomingMessage, @Res({ passthrough: true }) res: ServerResponse): Promise<void> {
    const token = sessionToken(req);
    await this.ctx.services.users.logout(token);
    res.setHeader('set-cookie', clearedSessionCookie());
  }

  @Delete(API_PATHS.sessions)
  async signOutEverywhere(
    @Req() req: IncomingMessage,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<{ ended: number }> {
    const user = await currentUser(req, this.ctx.services.users);
    const ended = await this.ctx.services.users.logoutEverywhere(user.userId);
    res.setHeader('set-cookie', clearedSessionCookie());
    this.ctx.logger.info({ user: user.email, ended }, 'signed out everywhere');
    return { ended };
  }
}
