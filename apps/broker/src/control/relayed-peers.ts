import type { PairInput, PathReportMessage, PathWantMessage } from '@trellis/proto';

type Want = Extract<PairInput, { kind: 'want' }>;

/** Releases remembered per device, to tell a `relay` report that crossed its release. */
const RELEASES_KEPT = 16;

/** The allocation id a `relay` report names (the agent's attempt id is `relay:<allocationId>`). */
function reportedAllocation(report: PathReportMessage): string | null {
  return report.attemptId.startsWith('relay:') ? report.attemptId.slice('relay:'.length) : null;
}

/**
 * The peers each device connected here reaches through a relay, as its agent last said: a
 * `want-path` with `relayed` or a `relay` path report adds one; a `direct` report or a
 * `relay-release` of that allocation sent to it removes it.
 *
 * A new owner of an account's pair paths starts with no pair, and an agent announces its relayed
 * peers only when its own connection comes up. Wants sent while the owner was changing reach a driver
 * that is then dropped, so each instance wants these again for its devices when an owner announces
 * itself: the owner takes the pairs up and claims their allocations before a relay's adoption
 * grace releases them under the agents.
 */
export class RelayedPeers {
  /** Per device: relayed peer → the allocation its agent named (null: a relayed want names none). */
  private readonly byDevice = new Map<string, Map<string, string | null>>();
  private readonly releasedTo = new Map<string, string[]>();

  /** A path message of a device connected here (one its netmap lets it send). */
  noted(deviceId: string, msg: PathReportMessage | PathWantMessage): void {
    if (msg.type === 'want-path') {
      // A plain want changes nothing: a dormant peer on a relay sends one as it wakes, and stays on it.
      if (msg.relayed === true)
        this.set(deviceId, msg.peerId, this.byDevice.get(deviceId)?.get(msg.peerId) ?? null);
    } else if (msg.result === 'direct') {
      this.remove(deviceId, msg.peerId);
    } else if (msg.result === 'relay') {
      const allocationId = reportedAllocation(msg);
      // Sent before the agent had the release: not a relay it is on.
      if (allocationId !== null && this.releasedTo.get(deviceId)?.includes(allocationId)) return;
      this.set(deviceId, msg.peerId, allocationId);
    }
  }

  /** The device was told its relay allocation to the peer is gone. */
  released(deviceId: string, peerId: string, allocationId: string): void {
    const released = [...(this.releasedTo.get(deviceId) ?? []), allocationId].slice(-RELEASES_KEPT);
    this.releasedTo.set(deviceId, released);
    const current = this.byDevice.get(deviceId)?.get(peerId);
    // A release of an allocation the agent has moved on from leaves the newer one.
    if (current === undefined || (current !== null && current !== allocationId)) return;
    this.remove(deviceId, peerId);
  }

  /** The device's connection here went (or was replaced: a new one announces its own). */
  forget(deviceId: string): void {
    this.byDevice.delete(deviceId);
    this.releasedTo.delete(deviceId);
  }

  /** The device's relayed peers as wants for the owner, those `canSee` allows. */
  wants(deviceId: string, canSee: (peerId: string) => boolean): Want[] {
    const peers = [...(this.byDevice.get(deviceId)?.keys() ?? [])].filter(canSee);
    return peers.map((peerId): Want => ({ kind: 'want', from: deviceId, peerId, relayed: true }));
  }

  private set(deviceId: string, peerId: string, allocationId: string | null): void {
    const peers = this.byDevice.get(deviceId) ?? new Map<string, string | null>();
    peers.set(peerId, allocationId);
    this.byDevice.set(deviceId, peers);
  }

  private remove(deviceId: string, peerId: string): void {
    const peers = this.byDevice.get(deviceId);
    if (!peers?.delete(peerId) || peers.size > 0) return;
    this.byDevice.delete(deviceId);
  }
}
