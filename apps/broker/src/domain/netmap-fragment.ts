import { type DeviceState, isVirtual, type NetmapPeer, type NetmapVirtual } from '@trellis/proto';
import type { PairDevice } from '../pair-paths/pair-types';
import { deviceCandidates } from './device-candidates';
import { Json } from './json-frame';
import type { Fragment } from './netmap-batch';
import { servedRoutes } from './netmap-self';

/** How other devices' netmaps carry `state`: a peer, or a virtual device behind its gateway. */
export function fragmentOf(state: DeviceState, dnsName: string): Fragment {
  if (isVirtual(state)) {
    const vd: NetmapVirtual = {
      id: state.id,
      name: state.name,
      dnsName,
      address: state.address,
      via: state.via!,
    };
    return { virtual: true, json: Json.of(vd) };
  }
  if (state.publicKey === undefined) throw new Error(`device ${state.id} has neither a key nor a gateway`);
  const peer: NetmapPeer = {
    id: state.id,
    name: state.name,
    dnsName,
    publicKey: state.publicKey,
    address: state.address,
    allowedIps: [`${state.address}/32`],
    endpoints: state.endpoints,
    candidates: deviceCandidates(state.endpoints, state.learned ?? []),
    online: state.online,
    ...(state.keyChange ? { keyChange: state.keyChange } : {}),
    ...servedRoutes(state),
  };
  return { virtual: false, json: Json.of(peer) };
}

/**
 * Whether `state` differs from the entry it replaces only in being online (or offline): its peers
 * of capability 3 then get it in a presence list instead of whole.
 */
export function onlyPresenceChanged(
  previous: { state: DeviceState; fragment: Fragment } | undefined,
  state: DeviceState,
  fragment: Fragment,
  dnsName: string,
): boolean {
  if (previous === undefined || previous.state.online === state.online || fragment.virtual) return false;
  return (
    fragmentOf({ ...state, online: previous.state.online }, dnsName).json.text === previous.fragment.json.text
  );
}

/** What the punch coordinator needs of a device: its typed candidates and NAT mapping. */
export function punchViewOf(state: DeviceState): PairDevice | undefined {
  // A virtual device never connects: no punching, no relay.
  if (state.publicKey === undefined) return undefined;
  return {
    id: state.id,
    publicKey: state.publicKey,
    candidates: deviceCandidates(state.endpoints, state.learned ?? []),
    mappingType: state.mappingType,
  };
}
