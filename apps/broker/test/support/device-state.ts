import { randomUUID } from 'node:crypto';
import { generateKeyPair } from '@trellis/crypto';
import type { DeviceState } from '../../src/domain/netmap-builder';

/** A device as the netmap holds it: a fresh id and key, offline, no addresses unless given. */
export function deviceState(name: string, address: string, extra: Partial<DeviceState> = {}): DeviceState {
  return {
    id: randomUUID(),
    name,
    publicKey: generateKeyPair().publicKey,
    address,
    endpoints: [],
    online: false,
    ...extra,
  };
}
