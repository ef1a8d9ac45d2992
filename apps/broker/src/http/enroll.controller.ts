import type { IncomingMessage } from 'node:http';
import { Body, Controller, Inject, Post, Req } from '@nestjs/common';
import { verifyEnrollProof } from '@trellis/crypto';
import { API_PATHS, EnrollRequest, type EnrollResponse } from '@trellis/proto';
import { requestAddress } from '../audit/audit-log';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { parseWith, requireProtocol } from './validation';

@Controller()
export class EnrollController {
  constructor(@Inject(BROKER_CONTEXT) private readonly ctx: BrokerContext) {}

  @Post(API_PATHS.enroll)
  async enroll(@Req() http: IncomingMessage, @Body() body: unknown): Promise<EnrollResponse> {
    const req = parseWith(EnrollRequest, body);
    requireProtocol(req.protocolVersion);
    const { proof, ...fields } = req;
    const key = this.ctx.brokerKey;
    const proven =
      proof !== undefined &&
      verifyEnrollProof(key.privateKey, key.publicKey, req.publicKey, req.setupKey, proof, Date.now());
    const device = { kind: 'device' as const, deviceId: null, address: requestAddress(http) };
    const result = await this.ctx.services.devices.enroll({ ...fields, proven }, device);
    this.ctx.metrics.enrollments.inc();
    this.ctx.logger.info(
      {
        deviceId: result.deviceId,
        account: result.accountName,
        name: result.name,
        reenrolled: result.reenrolled,
      },
      'device enrolled',
    );
    return {
      deviceId: result.deviceId,
      accountId: result.accountId,
      accountName: result.accountName,
      name: result.name,
      dnsName: result.dnsName,
      address: result.address,
      overlayPrefix: result.overlayPrefix,
      brokerPublicKey: this.ctx.brokerKey.publicKey,
      approved: result.approved,
    };
  }
}
