import type { DeviceRow } from '../db/schema';
import type { DeviceState } from '../domain/netmap-builder';

/** `routes`: its advertised routes (stateRoutes), absent when none. */
export function toDeviceState(row: DeviceRow, routes?: DeviceState['routes']): DeviceState {
  const owned = {
    ...(row.tags.length > 0 ? { tags: row.tags } : {}),
    ...(row.userEmail !== null ? { user: row.userEmail } : {}),
  };
  const approval = row.approved ? {} : { approved: false as const };
  if (row.viaDeviceId !== null && row.lanAddress !== null) {
    // A virtual device: no key, no connection, nothing learned; its gateway carries its traffic.
    return {
      id: row.id,
      name: row.name,
      address: row.address,
      via: row.viaDeviceId,
      lanAddress: row.lanAddress,
      endpoints: [],
      online: false,
      ...owned,
      ...approval,
    };
  }
  if (row.publicKey === null) throw new Error(`device ${row.id} has neither a key nor a gateway`);
  return {
    id: row.id,
    name: row.name,
    publicKey: row.publicKey,
    address: row.address,
    endpoints: row.endpoints,
    online: row.connectionId !== null,
    learned: row.netCandidates,
    mappingType: row.mappingType,
    connection: row.connectionId,
    ...owned,
    ...(row.keyChange !== null ? { keyChange: row.keyChange } : {}),
    ...approval,
    ...(routes && routes.length > 0 ? { routes } : {}),
  };
}
