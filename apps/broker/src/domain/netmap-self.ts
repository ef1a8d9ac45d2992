import type { DeviceState, NetmapRelay, NetmapSelf, ReflectorInfo } from '@trellis/proto';
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
  return self;
}

/** Whether what a device sees of itself (NetmapSelf) is unchanged: its name, address, NAT view. */
export function sameSelfView(a: DeviceState, b: DeviceState): boolean {
  return (
    a.name === b.name &&
    a.address === b.address &&
    JSON.stringify(a.learned ?? []) === JSON.stringify(b.learned ?? []) &&
    (a.mappingType ?? null) === (b.mappingType ?? null)
  );
}
