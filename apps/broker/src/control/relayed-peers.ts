import type { PairInput, PathReportMessage, PathWantMessage } from '@trellis/proto';

type Want = Extract<PairInput, { kind: 'want' }>;

/**
 * The peers each device connected here reaches through a relay, as its agent last said: a
 * `want-path` with `relayed` or a `relay` path report adds one; a plain `want-path` (its path died),
 * a `direct` report or a `relay-release` sent to it removes it.
 *
 * A new owner of an account's pair paths starts with no pair, and an agent announces its relayed
 * peers only when its own connection comes up. Wants sent while the owner was changing reach a driver
 * that is then dropped, so each instance wants these again for its devices when an owner announces
 * itself: the owner takes the pairs up and claims their allocations before a relay's adoption
 * grace releases them under the agents.
 */
export class RelayedPeers {
  private readonly byDevice = new Map<string, Set<string>>();

  /** A path message of a device connected here (one its netmap lets it send). */
  noted(deviceId: string, msg: PathReportMessage | PathWantMessage): void {
    if (msg.type === 'want-path' ? msg.relayed === true : msg.result === 'relay') {
      const peers = this.byDevice.get(deviceId) ?? new Set<string>();
      peers.add(msg.peerId);
      this.byDevice.set(deviceId, peers);
    } else if (msg.type === 'want-path' || msg.result === 'direct') {
      this.released(deviceId, msg.peerId);
    }
  }

  /** The device was told its relay to the peer is gone. */
  released(deviceId: string, peerId: string): void {
    const peers = this.byDevice.get(deviceId);
    if (!peers?.delete(peerId) || peers.size > 0) return;
    this.byDevice.delete(deviceId);
  }

  /** The device's connection here went (or was replaced: a new one announces its own). */
  forget(deviceId: string): void {
    this.byDevice.delete(deviceId);
  }

  /** The device's relayed peers as wants for the owner, those `canSee` allows. */
  wants(deviceId: string, canSee: (peerId: string) => boolean): Want[] {
    const peers = [...(this.byDevice.get(deviceId) ?? [])].filter(canSee);
    return peers.map((peerId): Want => ({ kind: 'want', from: deviceId, peerId, relayed: true }));
  }
}
