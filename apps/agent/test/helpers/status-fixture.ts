import type { StatusResponse } from '@trellis/proto';

/** A connected agent's status with no peers, for formatting and metrics tests. */
export function statusFixture(extra: Partial<StatusResponse> = {}): StatusResponse {
  return {
    ok: true,
    state: 'connected',
    self: null,
    broker: { url: 'https://broker:8443/', connected: true, lastError: null },
    interface: { name: 'trellis0', listenPort: 51820, publicKey: null, backend: 'userspace' },
    netmapSerial: 3,
    netmapSource: 'broker',
    peers: [],
    ...extra,
  };
}
