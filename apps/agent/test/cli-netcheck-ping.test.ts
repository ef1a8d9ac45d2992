import type { PeerStatus, StatusResponse } from '@trellis/proto';
import { formatNetcheck } from '../src/cli/format-netcheck';
import { describePath, findPeer } from '../src/cli/mesh-ping';
import { statusFixture } from './helpers/status-fixture';

const peer: PeerStatus = {
  id: '6f9619ff-8b86-4d11-b42d-00c04fc964ff',
  name: 'beta',
  dnsName: 'beta.acme.trellis.test',
  address: '100.64.0.2',
  publicKey: 'YR0XejcPpMkb3Xap9f0woGDjp3DE8DMObGhdvEvSPWg=',
  online: true,
  endpoint: '192.0.2.12:51820',
  candidates: ['192.0.2.12:51820'],
  lastHandshake: null,
  rxBytes: 0,
  txBytes: 0,
  path: 'direct-internet',
};

function status(extra: Partial<StatusResponse>): StatusResponse {
  return statusFixture({ peers: [peer], ...extra });
}

describe('trellis netcheck / ping helpers', () => {
  it('netcheck prints mapping type, reflexive addresses, port mapping and broker RTT', () => {
    const text = formatNetcheck(
      status({
        netinfo: {
          reflexive: ['192.0.2.11:51820'],
          mappingType: 'endpoint-dependent',
          portMapped: null,
          brokerRttMs: 3.4,
        },
      }),
    );
    expect(text).toContain('broker rtt:    3 ms');
    expect(text).toContain('reflexive:     192.0.2.11:51820');
    expect(text).toMatch(/NAT mapping:\s+endpoint-dependent \(symmetric NAT/);
    expect(text).toContain('port mapping:  none');
    expect(formatNetcheck(status({}))).toContain('NAT mapping:   unknown (needs two reflectors)');
  });

  it('finds a peer by name, DNS name, address or id and describes its path', () => {
    const s = status({});
    for (const q of ['beta', 'beta.acme.trellis.test', '100.64.0.2', peer.id])
      expect(findPeer(s, q)).toBe(peer);
    expect(findPeer(s, 'gamma')).toBeUndefined();
    expect(describePath(peer)).toBe('direct internet 192.0.2.12:51820');
    expect(describePath({ ...peer, path: 'direct-lan', endpoint: '10.0.0.2:51820' })).toBe(
      'direct LAN 10.0.0.2:51820',
    );
    expect(describePath({ ...peer, path: 'none' })).toBe('not direct (trying 192.0.2.12:51820)');
    expect(describePath(undefined)).toBe('peer gone');
    expect(
      describePath({ ...peer, path: 'relay', relayName: 'relay-fra', endpoint: '192.0.2.99:40001' }),
    ).toBe('via relay relay-fra (192.0.2.99:40001)');
  });
});
