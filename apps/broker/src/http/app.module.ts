import { type DynamicModule, Module } from '@nestjs/common';
import { AuthController } from './auth.controller';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { DeviceAuthController } from './device-auth.controller';
import { DevicesController } from './devices.controller';
import { EnrollController } from './enroll.controller';
import { EventsController } from './events.controller';
import { InfoController } from './info.controller';
import { PolicyController } from './policy.controller';
import { RelayTokensController } from './relay-tokens.controller';
import { RelaysController } from './relays.controller';
import { SetupKeysController } from './setup-keys.controller';

@Module({})
class BrokerHttpModule {}

/** The HTTP API as a Nest module; the domain services are built outside Nest and passed in. */
export function brokerHttpModule(ctx: BrokerContext): DynamicModule {
  return {
    module: BrokerHttpModule,
    controllers: [
      InfoController,
      AuthController,
      SetupKeysController,
      DevicesController,
      PolicyController,
      EnrollController,
      DeviceAuthController,
      EventsController,
      RelayTokensController,
      RelaysController,
    ],
    providers: [{ provide: BROKER_CONTEXT, useValue: ctx }],
  };
}
