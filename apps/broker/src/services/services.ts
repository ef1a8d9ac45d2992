import type { Logger } from 'pino';
import { AuditLogService } from '../audit/audit-log';
import type { Db } from '../db/database';
import { AddressAllocator } from '../domain/address-allocator';
import type { EventBus } from '../events/event-bus';
import { PolicyService } from '../policy/policy.service';
import { RoutesService } from '../routes/routes.service';
import { AccountSettingsService } from './account-settings';
import { AccountUsersService } from './account-users.service';
import { AccountsService } from './accounts.service';
import { DEVICE_AUTH_INTERVAL_SECONDS, DeviceAuthorizationsService } from './device-authorizations.service';
import { DevicesService } from './devices.service';
import { InstancesService } from './instances.service';
import { RelayTokensService } from './relay-tokens.service';
import { type LiveRelays, RelaysService } from './relays.service';
import { SetupKeysService } from './setup-keys.service';
import { UsersService } from './users.service';
import type { VirtualDevicesService } from './virtual-devices';

export interface ServicesConfig {
  zone: string;
  addressGraceSeconds: number;
  addressPoolSize?: number;
  /** Seconds between a signing-in device's polls (default DEVICE_AUTH_INTERVAL_SECONDS). */
  deviceAuthIntervalSeconds?: number;
  /** The registry of relays connected to this process (absent for the direct-database admin CLI). */
  liveRelays?: LiveRelays;
  /** Without `liveRelays`, a relay seen within this counts as online; ms. */
  relayStaleAfterMs: number;
  /** Where a change that committed but could not be published is reported (the hubs repair it). */
  logger?: Logger;
  /** Days audit events are kept (default DEFAULT_AUDIT_MAX_AGE_DAYS). */
  auditMaxAgeDays?: number;
}

/** The domain services, shared by the HTTP API, the control channel and both admin CLI paths. */
export interface Services {
  db: Db;
  accounts: AccountsService;
  users: UsersService;
  /** The account's users as its owners and admins manage them (the rules live there). */
  accountUsers: AccountUsersService;
  /** The account's settings (requiring approval of new devices). */
  accountSettings: AccountSettingsService;
  setupKeys: SetupKeysService;
  devices: DevicesService;
  /** LAN hosts registered behind a gateway device, with their own mesh address and name (issue 14). */
  virtualDevices: VirtualDevicesService;
  /** Sign in once: the device authorization grant (RFC 8628). */
  deviceAuth: DeviceAuthorizationsService;
  /** Broker instances' leases (several instances on one PostgreSQL). */
  instances: InstancesService;
  relayTokens: RelayTokensService;
  relays: RelaysService;
  /** The accounts' access policies (versions, check, plan, apply, explain). */
  policy: PolicyService;
  /** The audit log: reading it and purging old events (writers call recordAudit in their transaction). */
  audit: AuditLogService;
  /** Gateways' routes: advertisements, approvals (issue 14). */
  routes: RoutesService;
}

export function createServices(db: Db, bus: EventBus, config: ServicesConfig): Services {
  const devices = new DevicesService(db, bus, {
    zone: config.zone,
    addressGraceSeconds: config.addressGraceSeconds,
    allocator: new AddressAllocator({ poolSize: config.addressPoolSize }),
    ...(config.logger ? { logger: config.logger } : {}),
  });
  const routes = new RoutesService(db, devices);
  return {
    db,
    accounts: new AccountsService(db, {
      zone: config.zone,
      bus,
      ...(config.logger ? { logger: config.logger } : {}),
    }),
    users: new UsersService(db),
    accountUsers: new AccountUsersService(db, new UsersService(db), devices),
    accountSettings: new AccountSettingsService(db),
    setupKeys: new SetupKeysService(db),
    devices,
    virtualDevices: devices.virtualDevices(),
    deviceAuth: new DeviceAuthorizationsService(db, devices, {
      intervalSeconds: config.deviceAuthIntervalSeconds ?? DEVICE_AUTH_INTERVAL_SECONDS,
    }),
    instances: new InstancesService(db, devices),
    relayTokens: new RelayTokensService(db),
    relays: new RelaysService(db, { live: config.liveRelays, staleAfterMs: config.relayStaleAfterMs }),
    policy: new PolicyService(db, bus, config.logger, routes),
    audit: new AuditLogService(db, config.auditMaxAgeDays),
    routes,
  };
}
