import type { IncomingMessage } from 'node:http';
import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import {
  API_PATHS,
  type PolicyApplyResult,
  type PolicyCheckResult,
  type PolicyDocument,
  PolicyExplainRequest,
  type PolicyExplainResult,
  type PolicyPlanResult,
  PolicyText,
  type PolicyVersionInfo,
} from '@trellis/proto';
import { z } from 'zod';
import { userActor } from '../audit/audit-log';
import { badRequest } from '../domain/errors';
import { requireAdmin } from '../services/users.service';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { currentUser } from './current-user';
import { parseWith } from './validation';

const PolicyTextBody = z.strictObject({ text: PolicyText });
const RollbackBody = z.strictObject({ version: z.number().int().positive() });

function parseVersion(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw badRequest('policy version must be a whole number');
  return Number(value);
}

/**
 * The account's access policy. Every signed-in user may read it (and its history) and ask what it
 * allows; checking, planning, applying and rolling back need the owner or admin role. An invalid
 * policy is a 422 whose body lists the located errors (the exception filter adds them).
 */
@Controller(API_PATHS.policy)
export class PolicyController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  private get policy() {
    return this.ctx.services.policy;
  }

  @Get()
  async get(@Req() req: IncomingMessage): Promise<PolicyDocument> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.policy.get(user.accountId);
  }

  @Get('history')
  async history(@Req() req: IncomingMessage): Promise<PolicyVersionInfo[]> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.policy.history(user.accountId);
  }

  @Get('versions/:n')
  async version(@Req() req: IncomingMessage, @Param('n') n: string): Promise<PolicyDocument> {
    const user = await currentUser(req, this.ctx.services.users);
    return this.policy.version(user.accountId, parseVersion(n));
  }

  @Post('check')
  @HttpCode(200)
  async check(@Req() req: IncomingMessage, @Body() body: unknown): Promise<PolicyCheckResult> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { text } = parseWith(PolicyTextBody, body);
    return this.policy.check(user.accountId, text);
  }

  @Post('plan')
  @HttpCode(200)
  async plan(@Req() req: IncomingMessage, @Body() body: unknown): Promise<PolicyPlanResult> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { text } = parseWith(PolicyTextBody, body);
    return this.policy.plan(user.accountId, text);
  }

  @Put()
  async apply(@Req() req: IncomingMessage, @Body() body: unknown): Promise<PolicyApplyResult> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { text } = parseWith(PolicyTextBody, body);
    return this.policy.apply(user.accountId, text, user.email, null, userActor(user, req));
  }

  @Post('rollback')
  @HttpCode(200)
  async rollback(@Req() req: IncomingMessage, @Body() body: unknown): Promise<PolicyApplyResult> {
    const user = await currentUser(req, this.ctx.services.users);
    requireAdmin(user);
    const { version } = parseWith(RollbackBody, body);
    return this.policy.rollback(user.accountId, version, user.email, userActor(user, req));
  }

  @Post('explain')
  @HttpCode(200)
  async explain(@Req() req: IncomingMessage, @Body() body: unknown): Promise<PolicyExplainResult> {
    const user = await currentUser(req, this.ctx.services.users);
    const { src, dst } = parseWith(PolicyExplainRequest, body);
    return this.policy.explain(user.accountId, src, dst);
  }
}
