import { randomUUID } from 'node:crypto';
import type { DeviceState } from '../../src/domain/netmap-builder';

/** A virtual device as the netmap holds it: a LAN host behind `via`, with a fresh id, never online. */
export function virtualState(
  name: string,
  address: string,
  via: string,
  lanAddress: string,
  extra: Partial<DeviceState> = {},
): DeviceState {
  return {
    connection: null,
    id: randomUUID(),
    name,
    address,
    via,
    lanAddress,
    endpoints: [],
    online: false,
    ...extra,
  };
}
