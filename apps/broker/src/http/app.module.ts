import { type DynamicModule, Module } from '@nestjs/common';
import { AccountSettingsController } from './account-settings.controller';
import { AuditController } from './audit.controller';
import { AuthController } from './auth.controller';
import { BROKER_CONTEXT, type BrokerContext } from './broker-context';
import { DeviceAuthController } from './device-auth.controller';
import { DeviceListController, DevicesController } from './devices.controller';
import { DnsController } from './dns.controller';
import { EnrollController } from './enroll.controller';
import { EventsController } from './events.controller';
import { InfoController } from './info.controller';
import { OidcController } from './oidc.controller';
import { PolicyController } from './policy.controller';
import { RelayTokensController } from './relay-tokens.controller';
import { RelaysController } from './relays.controller';
import { DeviceRoutesController, RoutesController } from './routes.controller';
import { SetupKeysController } from './setup-keys.controller';
import { TopologyController } from './topology.controller';
import { UsersController } from './users.controller';

@Module({})
class BrokerHttpModule {}

/** The HTTP API as a Nest module; the domain services are built outside Nest and passed in. */
export function brokerHttpModule(ctx: BrokerContext): DynamicModule {
  return {
    module: BrokerHttpModule,
    controllers: [
      InfoController,
      AuthController,
      OidcController,
      SetupKeysController,
      DevicesController,
      DeviceListController,
      PolicyController,
      DnsController,
      EnrollController,
      DeviceAuthController,
      EventsController,
      TopologyController,
      RelayTokensController,
      RelaysController,
      UsersController,
      AuditController,
      AccountSettingsController,
      RoutesController,
      DeviceRoutesController,
    ],
    providers: [{ provide: BROKER_CONTEXT, useValue: ctx }],
  };
}
