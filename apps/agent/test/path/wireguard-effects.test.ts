import { observationsFromDevice, wgUpdateForEffect } from '../../src/path';
import { serializeUapiSet } from '../../src/wireguard/uapi';
import { PEER_ID, PEER_KEY } from './scenario';

describe('path effects on WireGuard', () => {
  it('turns a re-add into remove + add with endpoint, keepalive and allowed IPs in one UAPI transaction', () => {
    const update = wgUpdateForEffect(
      { type: 'readd-peer', peerId: PEER_ID, publicKey: PEER_KEY, endpoint: '192.0.2.1:51820' },
      ['100.64.0.2/32'],
    );
    const hex = Buffer.from(PEER_KEY, 'base64').toString('hex');
    expect(serializeUapiSet(update)).toBe(
      [
        'set=1',
        `public_key=${hex}`,
        'remove=true',
        `public_key=${hex}`,
        'endpoint=192.0.2.1:51820',
        'persistent_keepalive_interval=25',
        'replace_allowed_ips=true',
        'allowed_ip=100.64.0.2/32',
        '',
        '',
      ].join('\n'),
    );
  });

  it('sets the endpoint and keepalive for set-endpoint, only keepalive for keepalive, and does nothing for a peer the netmap lacks', () => {
    const effect = {
      type: 'set-endpoint' as const,
      peerId: PEER_ID,
      publicKey: PEER_KEY,
      endpoint: '192.0.2.1:5',
      keepalive: false,
    };
    expect(wgUpdateForEffect(effect, [])).toEqual({
      peers: [{ publicKey: PEER_KEY, endpoint: '192.0.2.1:5', persistentKeepalive: 0 }],
    });
    expect(wgUpdateForEffect({ ...effect, keepalive: true }, [])).toEqual({
      peers: [{ publicKey: PEER_KEY, endpoint: '192.0.2.1:5', persistentKeepalive: 25 }],
    });
    const off = { type: 'keepalive' as const, peerId: PEER_ID, publicKey: PEER_KEY, on: false };
    expect(wgUpdateForEffect(off, [])).toEqual({ peers: [{ publicKey: PEER_KEY, persistentKeepalive: 0 }] });
    expect(wgUpdateForEffect({ ...effect, type: 'readd-peer' }, null)).toEqual({ peers: [] });
  });

  it('reads handshakes in ms from the device state', () => {
    const rows = observationsFromDevice({
      privateKey: null,
      listenPort: 51820,
      peers: [
        {
          publicKey: PEER_KEY,
          endpoint: null,
          allowedIps: [],
          persistentKeepalive: 0,
          lastHandshakeSec: 1_700_000_000,
          rxBytes: 0,
          txBytes: 0,
        },
      ],
    });
    expect(rows).toEqual([
      { publicKey: PEER_KEY, lastHandshakeMs: 1_700_000_000_000, endpoint: null, txBytes: 0, rxBytes: 0 },
    ]);
  });
});
