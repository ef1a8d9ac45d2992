import type { Logger } from 'pino';
import type { BrokerKey } from '../keys/broker-key';
import type { BrokerMetrics } from '../metrics';
import type { Services } from '../services/services';
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
  /** Sign-in polls one client may send per minute (default 600; tests make it small). */
  deviceAuthPollsPerMinute?: number;
  /** Between heartbeats of the dashboard's event stream (tests make it short). */
  eventsHeartbeatMs?: number;
  /** The broker's configured public URL: links it hands out (device sign-in) start with it. */
  publicUrl?: string;
}

export const BROKER_CONTEXT = 'BROKER_CONTEXT';
