import type { DeviceRow } from '../db/schema';
import type { DeviceState } from '../domain/netmap-builder';

/** `routes`: its advertised routes (stateRoutes), absent when none. */
export function toDeviceState(row: DeviceRow, routes?: DeviceState['routes']): DeviceState {
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
    ...(row.tags.length > 0 ? { tags: row.tags } : {}),
    ...(row.userEmail !== null ? { user: row.userEmail } : {}),
    ...(row.keyChange !== null ? { keyChange: row.keyChange } : {}),
    ...(row.approved ? {} : { approved: false as const }),
    ...(routes && routes.length > 0 ? { routes } : {}),
  };
}
