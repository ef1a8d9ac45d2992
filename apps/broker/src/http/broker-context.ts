import type { Logger } from 'pino';
import type { BrokerKey } from '../keys/broker-key';
import type { BrokerMetrics } from '../metrics';
import type { OidcSignIn } from '../oidc/oidc-sign-in';
import type { Services } from '../services/services';
import type { TopologyStore } from '../topology/topology-store';
import type { DashboardEvents } from './dashboard-events';

/** Everything the HTTP controllers need, provided to Nest as one value. */
export interface BrokerContext {
  services: Services;
  brokerKey: BrokerKey;
  metrics: BrokerMetrics;
  logger: Logger;
  version: string;
  /** The dashboards watching device changes on this instance. */
  dashboardEvents: DashboardEvents;
  /** Every device's reported paths (the live topology). */
  topology: TopologyStore;
  /** Sign-in polls one client may send per minute (default 600; tests make it small). */
  deviceAuthPollsPerMinute?: number;
  /** Between heartbeats of the dashboard's event stream (tests make it short). */
  eventsHeartbeatMs?: number;
  /** The broker's configured public URL: links it hands out (device sign-in) start with it. */
  publicUrl?: string;
  /** Sign-in with an OpenID Connect provider, when configured. */
  oidc?: OidcSignIn;
  /** SHA-256 of the broker's TLS certificate (what `--fingerprint` pins), for relay command lines. */
  tlsFingerprint?: string;
}

export const BROKER_CONTEXT = 'BROKER_CONTEXT';
