import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { API_PATHS, LoginRequest, type LoginResponse } from '@trellis/proto';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { parseWith } from './validation';

@Controller()
export class AuthController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Post(API_PATHS.login)
  @HttpCode(200)
  login(@Body() body: unknown): Promise<LoginResponse> {
    const req = parseWith(LoginRequest, body);
    return this.ctx.services.users.login(req.email, req.password);
  }
}
