import { gatewayLines } from '../../src/cli/format-gateway';
import { formatStatus } from '../../src/cli/format-status';
import { DEFAULT_GATEWAY_PREFS } from '../../src/routes/gateway-prefs';
import { statusFixture } from '../helpers/status-fixture';
import { id, ZONE } from './fixtures';

describe('trellis status: virtual devices', () => {
  it('lists each one with its gateway, and why it is not reachable (even with no peers)', () => {
    const out = formatStatus(
      statusFixture({
        virtual: [
          {
            id: id(10),
            name: 'printer',
            dnsName: `printer.acme.${ZONE}`,
            address: '100.64.0.10',
            via: 'gwa',
            reachable: true,
          },
          {
            id: id(11),
            name: 'camera',
            dnsName: `camera.acme.${ZONE}`,
            address: '100.64.0.11',
            via: null,
            reachable: false,
            reason: 'its gateway is not in the netmap',
          },
        ],
      }),
      0,
    );
    expect(out).toContain('serial 3 from broker, 0 peers, 2 virtual devices');
    expect(out.split('\n').slice(-4)).toEqual([
      'VIRTUAL DEVICE  DNS NAME                   ADDRESS      VIA  REACHABLE',
      'printer         printer.acme.trellis.test  100.64.0.10  gwa  yes',
      'camera          camera.acme.trellis.test   100.64.0.11  -    no: its gateway is not in the netmap',
      '',
    ]);
  });

  it('the gateway section shows the virtual devices it serves, and why one is not', () => {
    const lines = gatewayLines({
      prefs: DEFAULT_GATEWAY_PREFS,
      advertised: [],
      routes: [],
      exitNode: null,
      virtualDevices: [
        { name: 'printer', address: '100.64.0.10', lanAddress: '192.168.1.100', served: true },
        {
          name: 'camera',
          address: '100.64.0.11',
          lanAddress: '10.0.0.5',
          served: false,
          reason: 'its LAN address is on eth2, not on the LAN interface in use (eth1)',
        },
      ],
    });
    expect(lines).toEqual([
      'serves:     printer 100.64.0.10 -> LAN 192.168.1.100, served',
      '            camera 100.64.0.11 -> LAN 10.0.0.5, NOT SERVED: its LAN address is on eth2, not on the LAN interface in use (eth1)',
    ]);
  });
});
