import type { RelayDirectory } from '../relay/relay-directory';
import type { AccountHub } from './account-hub';

/**
 * Keeps every hub's relay list and pair paths in step with the relays connected to this instance.
 * The directory has no unsubscribe: after the ControlHub stops, its events find no hubs.
 */
export function followRelays(directory: RelayDirectory, hubs: ReadonlyMap<string, AccountHub>): void {
  directory.on('relay-up', () => {
    for (const [accountId, hub] of hubs) {
      hub.setRelays(directory.netmapRelays(accountId));
      hub.paths?.active?.relayUp();
    }
  });
  directory.on('relay-down', (relayId) => {
    for (const [accountId, hub] of hubs) {
      hub.setRelays(directory.netmapRelays(accountId));
      hub.paths?.active?.relayDown(relayId);
    }
  });
  directory.on('expired', (allocationId) => {
    for (const hub of hubs.values()) if (hub.paths?.active?.expired(allocationId)) return;
  });
}
