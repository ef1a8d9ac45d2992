import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { API_PATHS } from '@trellis/proto';
import { type BaseClient, errors, generators, Issuer } from 'openid-client';
import type { Logger } from 'pino';
import { requestAddress } from '../audit/audit-log';
import type { Db } from '../db/database';
import { DomainError } from '../domain/errors';
import { flowCookie, flowFromCookie } from './flow-cookie';
import type { CheckedOidcOptions } from './oidc-options';
import { OidcFailure, type OidcUser, oidcUser, openSession } from './oidc-users';

/** Where the provider is asked to send the browser back, and the cookie that remembers the flow. */
export interface StartedSignIn {
  url: string;
  cookie: string;
}

export interface FinishedSignIn {
  user: OidcUser;
  token: string;
  expiresAt: Date;
  returnTo: string;
}

/**
 * The authorization-code flow with PKCE, state and nonce (openid-client does the protocol and the
 * ID token's checks). The provider's discovery document is fetched at the first sign-in and again
 * after a failure, so a provider that is down when the broker starts only delays sign-ins.
 */
export class OidcSignIn {
  private client: Promise<BaseClient> | undefined;

  constructor(
    readonly options: CheckedOidcOptions,
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  /** Looks the provider up now, in the background: its state shows in the log at start. */
  warmUp(): void {
    this.clientNow().then(
      () => this.logger.info({ issuer: this.options.issuer }, 'OIDC provider discovered'),
      (err: Error) =>
        this.logger.warn(
          { issuer: this.options.issuer, err: err.message },
          'OIDC provider not reachable yet; sign-ins retry it',
        ),
    );
  }

  private clientNow(): Promise<BaseClient> {
    if (!this.client) {
      const o = this.options;
      const found = Issuer.discover(o.issuer).then(
        (issuer) =>
          new issuer.Client({
            client_id: o.clientId,
            client_secret: o.clientSecret,
            response_types: ['code'],
          }),
      );
      // A failed discovery is forgotten: the next sign-in asks again.
      found.catch(() => {
        if (this.client === found) this.client = undefined;
      });
      this.client = found;
    }
    return this.client;
  }

  /** The provider's authorization URL for a new sign-in that comes back to `returnTo`. */
  async start(origin: string, returnTo: string): Promise<StartedSignIn> {
    const client = await this.clientNow().catch((err: Error) => {
      throw new OidcFailure('oidc_unavailable', `OIDC discovery failed: ${err.message}`);
    });
    const state = generators.state();
    const nonce = generators.nonce();
    const verifier = generators.codeVerifier();
    const redirectUri = `${origin}${API_PATHS.oidcCallback}`;
    const url = client.authorizationUrl({
      redirect_uri: redirectUri,
      scope: 'openid email',
      response_type: 'code',
      state,
      nonce,
      code_challenge: generators.codeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const cookie = flowCookie(this.options.clientSecret, { state, nonce, verifier, returnTo, redirectUri });
    return { url, cookie };
  }

  /** The provider's answer (the callback request): the user it signed in, with a new session. */
  async finish(req: IncomingMessage): Promise<FinishedSignIn> {
    const address = requestAddress(req);
    const flow = flowFromCookie(req, this.options.clientSecret);
    const query = new URL(req.url ?? '/', 'https://broker.invalid').searchParams;
    const state = query.get('state');
    if (!flow || state === null || !sameText(state, flow.state)) {
      throw new OidcFailure('oidc_state', 'state missing, expired or not this browser’s');
    }
    const error = query.get('error');
    if (error !== null) throw new OidcFailure('oidc_denied', `provider answered ${error.slice(0, 64)}`);
    const client = await this.clientNow().catch((err: Error) => {
      throw new OidcFailure('oidc_unavailable', `OIDC discovery failed: ${err.message}`);
    });
    const params = client.callbackParams(req);
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.callback(flow.redirectUri, params, {
        state: flow.state,
        nonce: flow.nonce,
        code_verifier: flow.verifier,
        response_type: 'code',
      });
      claims = tokens.claims();
      // Some providers leave the email out of the ID token: it is then in the userinfo answer
      // (given the token set, openid-client checks that answer is of the ID token's subject).
      if (typeof claims.email !== 'string' && tokens.access_token) {
        claims = { ...(await client.userinfo(tokens)), ...claims };
      }
    } catch (err) {
      throw asFailure(err);
    }
    if (typeof claims.email !== 'string') throw new OidcFailure('oidc_failed', 'the provider gave no email');
    if (claims.email_verified !== true) {
      throw new OidcFailure('oidc_unverified', 'the provider has not verified the email');
    }
    let user: OidcUser;
    try {
      user = await oidcUser(this.db, this.options.account, this.options.role, claims.email, address);
    } catch (err) {
      if (err instanceof DomainError) throw new OidcFailure('oidc_failed', err.message);
      throw err;
    }
    const session = await openSession(this.db, user, address);
    return { user, ...session, returnTo: flow.returnTo };
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * openid-client's errors as a reason, with a message fit for the log: its messages may quote the
 * values they compared ("…, expected X, got: Y"), which are cut off.
 */
function asFailure(err: unknown): OidcFailure {
  if (err instanceof errors.OPError) {
    return new OidcFailure('oidc_failed', `provider error ${String(err.error).slice(0, 64)}`);
  }
  const message = err instanceof Error ? err.message.split(/,|expected/)[0]!.slice(0, 120) : 'unknown';
  if (err instanceof errors.RPError) return new OidcFailure('oidc_failed', `ID token refused: ${message}`);
  return new OidcFailure('oidc_unavailable', `provider not reachable: ${message}`);
}
