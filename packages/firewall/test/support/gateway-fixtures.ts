import type { GatewayPolicy } from '../../src';

// The gateway scenarios every generator (nftables, pf, WFP) is held to by golden files.

const base = { meshInterface: 'trellis0', selfAddress: '100.64.0.1', virtualDevices: [], access: [] };

/** Two routes, masqueraded; .2 may open tcp 22 and 80-90 (+ping) in one, .3 everything in the other. */
export const ROUTES_MASQ: GatewayPolicy = {
  ...base,
  lan: { interfaceName: 'eth1', routes: ['192.168.1.0/24', '10.20.0.0/16'], masquerade: true },
  access: [
    {
      peer: '100.64.0.2',
      destination: '192.168.1.0/24',
      allow: [
        {
          proto: 'tcp',
          ports: [
            [22, 22],
            [80, 90],
          ],
        },
        { proto: 'icmp' },
      ],
    },
    { peer: '100.64.0.3', destination: '10.20.0.0/16', allow: [{}] },
    { peer: '100.64.0.4', destination: '10.20.5.0/24', allow: [{ proto: 'udp', ports: [[53, 53]] }] },
    { peer: '100.64.0.5', destination: '192.168.1.0/24', allow: [] },
  ],
};

/** The same without masquerade (site-to-site: the LAN router routes the overlay back). */
export const ROUTES_NO_MASQ: GatewayPolicy = {
  ...ROUTES_MASQ,
  lan: { ...ROUTES_MASQ.lan!, masquerade: false },
};

/** Two virtual devices at two LAN addresses, no routes; each reachable by one peer. */
export const VIRTUAL_DEVICES: GatewayPolicy = {
  ...base,
  lan: { interfaceName: 'eth1', routes: [], masquerade: false },
  virtualDevices: [
    { meshAddress: '100.64.7.2', lanAddress: '192.168.1.101' },
    { meshAddress: '100.64.7.1', lanAddress: '192.168.1.100' },
  ],
  access: [
    { peer: '100.64.0.2', destination: '100.64.7.1', allow: [{ proto: 'tcp', ports: [[631, 631]] }] },
    {
      peer: '100.64.0.3',
      destination: '100.64.7.2',
      allow: [{ proto: 'tcp', ports: [[554, 554]] }, { proto: 'icmp' }],
    },
  ],
};

/** Exit node for two peers through eth0, not into private ranges (its own subnet among them). */
export const EXIT_NODE: GatewayPolicy = {
  ...base,
  exitNode: {
    wanInterface: 'eth0',
    peers: ['100.64.0.9', '100.64.0.2'],
    excluded: ['192.168.0.0/16', '10.0.0.0/8', '192.168.7.9/24', '100.64.0.0/10', '203.0.113.0/24'],
  },
};

/** A gateway serving nothing: nothing is forwarded. */
export const EMPTY_GATEWAY: GatewayPolicy = base;

export const GATEWAY_SCENARIOS: ReadonlyArray<readonly [string, GatewayPolicy]> = [
  ['routes-masq', ROUTES_MASQ],
  ['routes-no-masq', ROUTES_NO_MASQ],
  ['virtual-devices', VIRTUAL_DEVICES],
  ['exit-node', EXIT_NODE],
  ['empty', EMPTY_GATEWAY],
];
