import type { LabProcess } from '../lab-process';
import type { AgentRunner } from './agent';

/** Interval of the traffic ping: a few packets a second, enough to show demand at once. */
const TRAFFIC_INTERVAL_S = '0.2';

/**
 * Paths are made on demand: the broker punches or relays a pair only once WireGuard has packets
 * for the peer. This pings `address` (the peer's overlay address) from the agent's device, as a
 * user's traffic would, until it is stopped. Lab processes are stopped on teardown anyway.
 */
export function startTraffic(from: AgentRunner, address: string, logName?: string): LabProcess {
  const args = ['-n', '-D', '-i', TRAFFIC_INTERVAL_S, '-W', '1', address];
  return from.device.ns.spawn('ping', args, logName === undefined ? {} : { logName });
}

/**
 * Runs `until` while `from` sends traffic to `address` (startTraffic), then stops it: for waiting
 * on a path that only traffic makes. The path stays in use for the idle time after (3 min).
 */
export async function withTraffic<T>(
  from: AgentRunner,
  address: string,
  until: () => Promise<T>,
  logName?: string,
): Promise<T> {
  const p = startTraffic(from, address, logName);
  try {
    return await until();
  } finally {
    await p.stop(2_000);
  }
}
