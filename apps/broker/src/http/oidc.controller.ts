import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import {
  API_PATHS,
  OIDC_RETURN_TO_PARAM,
  type OidcSignInError,
  SIGN_IN_ERROR_PARAM,
  type SignInOptions,
} from '@trellis/proto';
import { clearedFlowCookie, flowFromCookie, safeReturnTo } from '../oidc/flow-cookie';
import { OidcFailure } from '../oidc/oidc-users';
import { sessionCookie } from '../security/web-session';
import { SESSION_TTL_SECONDS } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';

/** A Host header that can be part of a URL as it is (name or address, optional port). */
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * Sign-in with an OpenID Connect provider. Both routes are browser navigations and always answer
 * with a redirect: to the provider, or back to the dashboard, signed in or with a reason on the
 * sign-in page (never a JSON error page).
 */
@Controller()
export class OidcController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get(API_PATHS.signInOptions)
  options(): SignInOptions {
    const oidc = this.ctx.oidc;
    return { password: true, oidc: oidc ? { name: oidc.options.name } : null };
  }

  @Get(API_PATHS.oidcStart)
  async start(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    const query = new URL(req.url ?? '/', 'https://broker.invalid').searchParams;
    const returnTo = safeReturnTo(query.get(OIDC_RETURN_TO_PARAM));
    const oidc = this.ctx.oidc;
    const origin = this.origin(req);
    if (!oidc || !origin) return this.failed(req, res, returnTo, oidcOff(oidc !== undefined));
    try {
      const started = await oidc.start(origin, returnTo);
      res.setHeader('set-cookie', started.cookie);
      redirect(res, started.url);
    } catch (err) {
      this.failed(req, res, returnTo, err);
    }
  }

  @Get(API_PATHS.oidcCallback)
  async callback(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    const oidc = this.ctx.oidc;
    if (!oidc) return this.failed(req, res, '/', oidcOff(false));
    try {
      const done = await oidc.finish(req);
      res.setHeader('set-cookie', [sessionCookie(done.token, SESSION_TTL_SECONDS), clearedFlowCookie()]);
      this.ctx.logger.info(
        { user: done.user.email, role: done.user.role, created: done.user.created, from: from(req) },
        'signed in with OIDC',
      );
      redirect(res, done.returnTo);
    } catch (err) {
      // Back to the page the sign-in started from, when the flow says which.
      const returnTo = flowFromCookie(req, oidc.options.clientSecret)?.returnTo ?? '/';
      res.setHeader('set-cookie', clearedFlowCookie());
      this.failed(req, res, returnTo, err);
    }
  }

  /** This broker's origin as the browser sees it: the public URL, else the request's Host. */
  private origin(req: IncomingMessage): string | null {
    if (this.ctx.publicUrl) return new URL(this.ctx.publicUrl).origin;
    const host = req.headers.host;
    return host && HOST.test(host) ? `https://${host}` : null;
  }

  /** Back to the dashboard's sign-in page (the page it came from) with the reason; logged. */
  private failed(req: IncomingMessage, res: ServerResponse, returnTo: string, err: unknown): void {
    const reason: OidcSignInError = err instanceof OidcFailure ? err.reason : 'oidc_failed';
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof OidcFailure)
      this.ctx.logger.warn({ from: from(req), reason, err: message }, 'OIDC sign-in failed');
    else this.ctx.logger.error({ from: from(req), reason, err: message }, 'OIDC sign-in failed');
    this.ctx.metrics.error(reason);
    const back = new URL(returnTo, 'https://broker.invalid');
    back.searchParams.set(SIGN_IN_ERROR_PARAM, reason);
    redirect(res, `${back.pathname}${back.search}`);
  }
}

function oidcOff(configured: boolean): OidcFailure {
  return configured
    ? new OidcFailure('oidc_failed', 'the request has no usable Host header')
    : new OidcFailure('oidc_off', 'OIDC sign-in is not configured');
}

function from(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** 303: the browser follows with a GET; nothing of it is cached. */
function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303;
  res.setHeader('location', location);
  res.setHeader('cache-control', 'no-store');
  res.end();
}
