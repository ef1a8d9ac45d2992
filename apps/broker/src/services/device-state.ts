import type { DeviceRow } from '../db/schema';
import type { DeviceState } from '../domain/netmap-builder';

export function toDeviceState(row: DeviceRow): DeviceState {
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
  };
}
