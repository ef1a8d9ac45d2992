import type { DeviceFrame, ReflectorInfo } from '@trellis/proto';
import type { Logger } from 'pino';
import { PairPathDriver, type PairPathTimings } from '../pair-paths/pair-path-driver';
import type { RelayDirectory } from '../relay/relay-directory';
import type { AccountHub } from './account-hub';
import type { ReflexiveSource } from './reflexive-forwarder';

/** The ControlHub options an account's pair-path driver is made from. */
export interface DriverOptions {
  logger: Logger;
  reflectors?: readonly ReflectorInfo[];
  reflexive?: ReflexiveSource;
  pathTimings?: PairPathTimings;
  relays?: RelayDirectory;
}

/** The driver of an account's pair paths on this instance (made when it becomes the owner). */
export function pairPathDriverFor(
  accountId: string,
  hub: AccountHub,
  opts: DriverOptions,
  send: (deviceId: string, frame: DeviceFrame) => void,
): PairPathDriver {
  const { reflexive, relays } = opts;
  return new PairPathDriver({
    accountId,
    send,
    rttOf: (id) => hub.sessions.get(id)?.rttMs() ?? null,
    relayRtts: (id) => hub.sessions.get(id)?.relayRttMs(),
    ...(reflexive ? { reflexiveSeenSince: (k: string, since: number) => reflexive.seenSince(k, since) } : {}),
    reflectorsRun: (opts.reflectors ?? []).length > 0,
    ...(relays ? { directory: relays } : {}),
    logger: opts.logger,
    ...(opts.pathTimings ? { timings: opts.pathTimings } : {}),
  });
}
