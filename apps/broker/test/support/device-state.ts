import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import type { DeviceState } from '../../src/domain/netmap-builder';

/** The broker instance the tests' online devices are connected to. */
export const TEST_INSTANCE = '00000000000a';

/**
 * A device as the netmap holds it: a fresh id and key, offline, no addresses unless given. Online,
 * it is connected to TEST_INSTANCE unless its connection is given.
 */
export function deviceState(name: string, address: string, extra: Partial<DeviceState> = {}): DeviceState {
  const connection = extra.online ? `${TEST_INSTANCE}:${randomUUID()}` : null;
  return {
    connection,
    id: randomUUID(),
    name,
    publicKey: generateKeyPair().publicKey,
    address,
    endpoints: [],
    online: false,
    ...extra,
  };
}
