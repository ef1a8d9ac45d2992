import type { DeviceState, NetmapRelay, NetmapSelf, PeerRoute, ReflectorInfo } from '@trellis/proto';
import { OVERLAY_PREFIX } from '@trellis/proto';

/** What a device is told about itself: who it is, where to probe, and what the broker saw of it. */
export function selfOf(
  state: DeviceState,
  dnsName: string,
  accountName: string,
  reflectors: readonly ReflectorInfo[],
  relays: readonly NetmapRelay[],
): NetmapSelf {
  const self: NetmapSelf = {
    id: state.id,
    name: state.name,
    dnsName,
    address: state.address,
    accountName,
    overlayPrefix: OVERLAY_PREFIX,
  };
  if (reflectors.length > 0) self.reflectors = [...reflectors];
  if (relays.length > 0) self.relays = [...relays];
  const reflexive = (state.learned ?? []).filter((c) => c.kind === 'reflexive').map((c) => c.endpoint);
  if (reflexive.length > 0) self.reflexive = reflexive;
  if (state.mappingType) self.mappingType = state.mappingType;
  if (state.routes) self.routes = state.routes.map((r) => ({ prefix: r.prefix, approved: r.approved }));
  return self;
}

const selfRoutes = (s: DeviceState) => (s.routes ?? []).map((r) => [r.prefix, r.approved]);

/** Whether what a device sees of itself (NetmapSelf) is unchanged: its name, address, NAT view, its routes. */
export function sameSelfView(a: DeviceState, b: DeviceState): boolean {
  return (
    a.name === b.name &&
    a.address === b.address &&
    JSON.stringify(a.learned ?? []) === JSON.stringify(b.learned ?? []) &&
    (a.mappingType ?? null) === (b.mappingType ?? null) &&
    JSON.stringify(selfRoutes(a)) === JSON.stringify(selfRoutes(b))
  );
}

/** NetmapPeer.routes: what the device forwards now (approved and up); absent when nothing. */
export function servedRoutes(state: DeviceState): { routes?: PeerRoute[] } {
  const routes = (state.routes ?? [])
    .filter((r) => r.approved && !r.down)
    .map((r) => ({ prefix: r.prefix, since: r.since }));
  return routes.length > 0 ? { routes } : {};
}
