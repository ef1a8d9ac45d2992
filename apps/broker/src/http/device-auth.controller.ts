import type { IncomingMessage } from 'node:http';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import { verifyEnrollProof } from '@trellis/crypto';
import {
  API_PATHS,
  DEVICE_AUTH_PROOF_LABEL,
  DeviceAuthDecision,
  type DeviceAuthDecisionResponse,
  type DeviceAuthInfo,
  DeviceAuthRequest,
  type DeviceAuthResponse,
  DeviceTokenRequest,
  type EnrollResponse,
  UserCode,
} from '@trellis/proto';
import { userActor } from '../audit/audit-log';
import { DomainError, rateLimited } from '../domain/errors';
import { clientKey } from '../security/client-address';
import { RateLimiter } from '../security/rate-limiter';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith, requireProtocol } from './validation';

/** Code pairs one address may ask for per minute. */
const STARTS_PER_MINUTE = 10;
/** Code pairs all clients together may ask for per minute (each is a row until it expires). */
const ALL_STARTS_PER_MINUTE = 600;
/** Polls one client may send per minute: 50 devices signing in at once behind one address. */
const POLLS_PER_MINUTE = 600;
/** Wrong user codes one user may enter per 10 minutes: with 20^8 codes, guessing one is hopeless. */
const WRONG_CODES_PER_10_MINUTES = 10;

const HOST_HEADER = /^([A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]{2,45}\])(:\d{1,5})?$/;

/** Sign in once (RFC 8628): the device's two calls, and the signed-in user's look-up and decision. */
@Controller()
export class DeviceAuthController {
  private readonly starts = new RateLimiter(STARTS_PER_MINUTE, 60_000);
  private readonly allStarts = new RateLimiter(ALL_STARTS_PER_MINUTE, 60_000);
  private readonly polls: RateLimiter;
  private readonly wrongCodes = new RateLimiter(WRONG_CODES_PER_10_MINUTES, 600_000);

  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {
    this.polls = new RateLimiter(ctx.deviceAuthPollsPerMinute ?? POLLS_PER_MINUTE, 60_000);
  }

  @Post(API_PATHS.deviceAuth)
  @HttpCode(200)
  async start(@Req() req: IncomingMessage, @Body() body: unknown): Promise<DeviceAuthResponse> {
    const from = req.socket.remoteAddress ?? 'unknown';
    const client = clientKey(from);
    if (!this.starts.take(client))
      throw rateLimited(this.starts.retryAfterMs(client), 'sign-in requests from this address');
    if (!this.allStarts.take('all'))
      throw rateLimited(this.allStarts.retryAfterMs('all'), 'sign-in requests');
    const { proof, protocolVersion, ...fields } = parseWith(DeviceAuthRequest, body);
    requireProtocol(protocolVersion);
    const key = this.ctx.brokerKey;
    const proven =
      proof !== undefined &&
      verifyEnrollProof(
        key.privateKey,
        key.publicKey,
        fields.publicKey,
        DEVICE_AUTH_PROOF_LABEL,
        proof,
        Date.now(),
      );
    const started = await this.ctx.services.deviceAuth.start({ ...fields, proven }, from);
    this.ctx.logger.info({ from, hostname: fields.hostname, os: fields.os }, 'device sign-in started');
    const page = `${this.baseUrl(req)}${API_PATHS.deviceVerification}`;
    return {
      ...started,
      verificationUri: page,
      // In the fragment: a browser never sends it, so no server or proxy logs the code.
      verificationUriComplete: `${page}#code=${started.userCode}`,
    };
  }

  @Post(API_PATHS.deviceAuthToken)
  @HttpCode(200)
  async token(@Req() req: IncomingMessage, @Body() body: unknown): Promise<EnrollResponse> {
    const client = clientKey(req.socket.remoteAddress);
    if (!this.polls.take(client))
      throw rateLimited(this.polls.retryAfterMs(client), 'polls from this address');
    const { deviceCode } = parseWith(DeviceTokenRequest, body);
    const { enrolled } = await this.ctx.services.deviceAuth.poll(deviceCode);
    return { ...enrolled, brokerPublicKey: this.ctx.brokerKey.publicKey };
  }

  @Get(`${API_PATHS.deviceAuthRequests}/:userCode`)
  async describe(@Req() req: IncomingMessage, @Param('userCode') code: string): Promise<DeviceAuthInfo> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.guessing(user.userId, () => this.ctx.services.deviceAuth.describe(parseWith(UserCode, code)));
  }

  @Post(API_PATHS.deviceAuthRequests)
  @HttpCode(200)
  async decide(@Req() req: IncomingMessage, @Body() body: unknown): Promise<DeviceAuthDecisionResponse> {
    const user = await currentUser(req, this.ctx.services.users);
    const { userCode, approve } = parseWith(DeviceAuthDecision, body);
    const result = await this.guessing(user.userId, () =>
      this.ctx.services.deviceAuth.decide(user, userCode, approve, userActor(user, req)),
    );
    if (result) {
      this.ctx.metrics.enrollments.inc();
      this.ctx.logger.info(
        { deviceId: result.deviceId, account: result.accountName, name: result.name, approvedBy: user.email },
        'device enrolled (signed in)',
      );
    } else this.ctx.logger.info({ deniedBy: user.email }, 'device sign-in denied');
    return {
      approved: result !== null,
      deviceId: result?.deviceId ?? null,
      name: result?.name ?? null,
      awaitingAdmin: result !== null && !result.approved,
    };
  }

  /**
   * Runs a look-up by user code, counting the user's wrong codes and refusing once there are too
   * many. Counted from the start (taken back when the code was right), so concurrent guesses stop
   * at the limit.
   */
  private async guessing<T>(userId: string, lookUp: () => Promise<T>): Promise<T> {
    if (!this.wrongCodes.take(userId)) throw rateLimited(this.wrongCodes.retryAfterMs(userId), 'wrong codes');
    try {
      const found = await lookUp();
      this.wrongCodes.refund(userId);
      return found;
    } catch (err) {
      const wrong = err instanceof DomainError && (err.status === 404 || err.status === 400);
      if (!wrong) this.wrongCodes.refund(userId);
      throw err;
    }
  }

  /** The configured public URL, else the host the device reached us by (checked to be only a host). */
  private baseUrl(req: IncomingMessage): string {
    if (this.ctx.publicUrl) return this.ctx.publicUrl;
    const host = req.headers.host ?? '';
    if (HOST_HEADER.test(host)) return `https://${host}`;
    const local = req.socket.localAddress ?? '127.0.0.1';
    return `https://${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort}`;
  }
}
