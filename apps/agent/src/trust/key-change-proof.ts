import { verifyKeyRotation } from '@trellis/crypto';
import type { KeyChange } from '@trellis/proto';

/** What a key change's proof shows, against the key and device pinned for a peer. */
export type KeyChangeProof = 'rotated' | 'rekeyed' | 'rekey-of-another-device' | 'unsigned';

/**
 * Whether `peer.keyChange` proves its key may follow `pinnedKey`: a rotation signed by the pinned
 * key, or an admin's re-key of the same device. Null: the change does not start at the pinned key.
 * The one rule PeerPins and the exit node's pin both apply.
 */
export function keyChangeProof(
  pinnedKey: string,
  pinnedDeviceId: string,
  peer: { id: string; address: string; publicKey: string; keyChange?: KeyChange },
): KeyChangeProof | null {
  const change = peer.keyChange;
  if (!change || change.previousKey !== pinnedKey) return null;
  if (change.kind === 'rekeyed') return peer.id === pinnedDeviceId ? 'rekeyed' : 'rekey-of-another-device';
  const rotation = {
    deviceId: peer.id,
    address: peer.address,
    previousKey: pinnedKey,
    newKey: peer.publicKey,
  };
  return verifyKeyRotation(rotation, change.signature) ? 'rotated' : 'unsigned';
}
