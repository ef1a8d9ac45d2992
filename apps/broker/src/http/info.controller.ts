import { Controller, Get, Header, Inject } from '@nestjs/common';
import { API_PATHS, type BrokerInfo, CAPABILITY_VERSION, MIN_CAPABILITY_VERSION } from '@trellis/proto';
import { ping } from '../db/database';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';

@Controller()
export class InfoController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Get(API_PATHS.info)
  info(): BrokerInfo {
    return {
      protocolVersion: CAPABILITY_VERSION,
      capabilityVersion: CAPABILITY_VERSION,
      minCapabilityVersion: MIN_CAPABILITY_VERSION,
      version: this.ctx.version,
      brokerPublicKey: this.ctx.brokerKey.publicKey,
    };
  }

  @Get(API_PATHS.health)
  async health(): Promise<{ ok: true }> {
    await ping(this.ctx.services.db);
    return { ok: true };
  }

  @Get(API_PATHS.metrics)
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.ctx.metrics.registry.metrics();
  }
}
