import type { RelayPathMessage } from '@trellis/proto';
import type { RelayAllocationRecord, RelayHandle } from '../relay/relay-directory';
import type { PairDevice } from './pair-types';
import { relayEndpoint } from './relay-choice';

/**
 * The `relay` message telling a device to reach `peer` through an allocation, or null when the relay
 * has no usable UDP endpoint. Only a side whose network blocks UDP gets the relay's TCP fallback.
 */
export function relayPathMessage(
  peer: PairDevice,
  record: RelayAllocationRecord,
  relay: RelayHandle,
  /** `self` sends no UDP (its network blocks it): it gets the relay's TCP fallback. */
  selfUdpBlocked: boolean,
): RelayPathMessage | null {
  const endpoint = relayEndpoint(relay, record.port);
  if (endpoint === null) return null;
  const msg: RelayPathMessage = {
    type: 'relay',
    peerId: peer.id,
    peerPublicKey: peer.publicKey,
    allocationId: record.allocationId,
    relayId: relay.id,
    relayName: relay.name,
    endpoint,
  };
  if (relay.tcp && selfUdpBlocked) msg.tcp = relay.tcp;
  return msg;
}
