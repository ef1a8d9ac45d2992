import { API_PATHS, DeviceInfo } from '@trellis/proto';
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api';
import { namesById, unknownGateways } from './virtual-device';

/**
 * Names of the devices `rows` hold and of the gateways their virtual devices are behind: a gateway
 * not among the fetched rows (another page, another filter) is asked for once; one the user may not
 * see maps to null, and is then shown by its id.
 */
export function useGatewayNames(rows: readonly DeviceInfo[]): ReadonlyMap<string, string | null> {
  const [fetched, setFetched] = useState<ReadonlyMap<string, string | null>>(new Map());
  const listed = useMemo(() => namesById(rows), [rows]);
  const names = useMemo(() => new Map<string, string | null>([...fetched, ...listed]), [fetched, listed]);
  const missing = unknownGateways(rows, names).join(',');
  useEffect(() => {
    if (missing === '') return;
    let live = true;
    void Promise.all(
      missing.split(',').map(async (id): Promise<[string, string | null]> => {
        try {
          return [id, (await api('GET', `${API_PATHS.devices}/${id}`, DeviceInfo)).name];
        } catch {
          return [id, null];
        }
      }),
    ).then((found) => {
      if (live) setFetched((m) => new Map([...m, ...found]));
    });
    return () => {
      live = false;
    };
  }, [missing]);
  return names;
}
