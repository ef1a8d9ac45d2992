import type { DevicePathsEvent, PathStateMessage } from '@trellis/proto';
import type { Logger } from 'pino';
import type { EventBus } from '../events/event-bus';

export interface PathStateIntakeDeps {
  /** The device's account and its netmap's peers (ControlHub.peersOf); null: not connected here. */
  peersOf(deviceId: string): { accountId: string; canSee(peerId: string): boolean } | null;
  bus: EventBus;
  logger: Logger;
  now?: () => number;
}

/**
 * Checks a device's `path-state` against its netmap and fans it out to every instance's
 * TopologyStore. A report about a device that is not its peer (hidden by the policy, another
 * account's, made up) is dropped: nobody's picture shows an edge the device cannot have.
 */
export function pathStateIntake(
  deps: PathStateIntakeDeps,
): (deviceId: string, msg: PathStateMessage) => void {
  const now = deps.now ?? Date.now;
  return (deviceId, msg) => {
    const peers = deps.peersOf(deviceId);
    if (!peers) return;
    // `none` only takes back the device's own report (a peer the policy just hid): always allowed.
    const paths = msg.paths.filter((p) => p.path === 'none' || peers.canSee(p.peerId));
    if (paths.length < msg.paths.length)
      deps.logger.warn(
        { deviceId, dropped: msg.paths.length - paths.length },
        'path state about devices that are not its peers dropped',
      );
    if (paths.length === 0 && !msg.full) return;
    const event: DevicePathsEvent = {
      kind: 'device-paths',
      accountId: peers.accountId,
      deviceId,
      full: msg.full === true,
      paths,
      at: now(),
    };
    deps.bus
      .publish(event)
      .catch((err: Error) => deps.logger.warn({ err: err.message }, 'path state not published'));
  };
}
