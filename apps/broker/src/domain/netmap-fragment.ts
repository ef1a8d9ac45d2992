import { type DeviceState, isVirtual, type NetmapPeer, type NetmapVirtual } from '@trellis/proto';
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
