import type { IncomingMessage, ServerResponse } from 'node:http';
import { Body, Controller, Delete, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { API_PATHS, LoginRequest, type LoginResponse, type WebSession } from '@trellis/proto';
import { requestAddress, userActor } from '../audit/audit-log';
import { DomainError, rateLimited } from '../domain/errors';
import { clientKey } from '../security/client-address';
import { LoginThrottle } from '../security/login-throttle';
import { clearedSessionCookie, csrfTokenFor, sessionCookie } from '../security/web-session';
import { SESSION_TTL_SECONDS } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser, sessionToken } from './current-user';
import { parseWith } from './validation';

@Controller()
export class AuthController {
  /**
   * Failed logins per client and per (email, client), backoff after 5: a guesser is stopped
   * without locking the account's owner out from everywhere. Per email from any client, after 100:
   * many clients guessing one password are stopped too.
   */
  private readonly throttle = new LoginThrottle();
  private readonly perEmail = new LoginThrottle(Date.now, 100);

  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  /** For the CLI and scripts: the session token in the body, used as a bearer token. */
  @Post(API_PATHS.login)
  @HttpCode(200)
  login(@Req() req: IncomingMessage, @Body() body: unknown): Promise<LoginResponse> {
    return this.checkedLogin(req, body);
  }

  /** A login unless its address or email must wait; failures are counted and logged with the address. */
  private async checkedLogin(req: IncomingMessage, body: unknown): Promise<LoginResponse> {
    const { email, password } = parseWith(LoginRequest, body);
    const from = req.socket.remoteAddress ?? 'unknown';
    const client = clientKey(from);
    const who = email.trim().toLowerCase();
    const keys = [`client ${client}`, `email ${who} client ${client}`];
    const wait = Math.max(...keys.map((k) => this.throttle.waitMs(k)), this.perEmail.waitMs(who));
    if (wait > 0) {
      this.ctx.logger.warn({ from, email }, 'login refused: too many failed logins');
      throw rateLimited(wait, 'failed logins');
    }
    // Counted as failed from the start: a burst of concurrent guesses meets the limit as it goes.
    for (const k of keys) this.throttle.attempt(k);
    this.perEmail.attempt(who);
    try {
      const session = await this.ctx.services.users.login(email, password, requestAddress(req));
      for (const k of keys) this.throttle.succeeded(k);
      this.perEmail.succeeded(who);
      return session;
    } catch (err) {
      if (err instanceof DomainError && err.status === 401) {
        this.ctx.metrics.error('login_failed');
        this.ctx.logger.warn({ from, email }, 'login failed');
      }
      throw err;
    }
  }

  /** For the dashboard: the token goes into an HttpOnly cookie and never reaches the page's scripts. */
  @Post(API_PATHS.session)
  @HttpCode(200)
  async signIn(
    @Req() req: IncomingMessage,
    @Body() body: unknown,
    @Res({ passthrough: true }) res: ServerResponse,
  ): Promise<WebSession> {
    const { token, expiresAt, user } = await this.checkedLogin(req, body);
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
    const ended = await this.ctx.services.users.logoutEverywhere(user, userActor(user, req));
    res.setHeader('set-cookie', clearedSessionCookie());
    this.ctx.logger.info({ user: user.email, ended }, 'signed out everywhere');
    return { ended };
  }
}
