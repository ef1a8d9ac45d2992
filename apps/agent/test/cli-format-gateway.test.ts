import type { GatewayStatus } from '@trellis/proto';
import { gatewayLines } from '../src/cli/format-gateway';
import { formatStatus } from '../src/cli/format-status';
import { DEFAULT_GATEWAY_PREFS } from '../src/routes/gateway-prefs';
import { statusFixture } from './helpers/status-fixture';

const gateway = (over: Partial<GatewayStatus>): GatewayStatus => ({
  prefs: DEFAULT_GATEWAY_PREFS,
  advertised: [],
  routes: [],
  exitNode: null,
  ...over,
});

describe('trellis status: gateway section', () => {
  it('prints nothing for a device that neither offers nor uses routes', () => {
    expect(gatewayLines(gateway({}))).toEqual([]);
    expect(formatStatus(statusFixture({ gateway: gateway({}) }), 0)).not.toMatch(
      /advertise|routes:|exit node/,
    );
  });

  it('shows what it advertises with approval and LAN state', () => {
    const lines = gatewayLines(
      gateway({
        advertised: [
          { prefix: '192.168.1.0/24', approved: true, down: false },
          { prefix: '10.0.0.0/8', approved: false, down: true },
          { prefix: '0.0.0.0/0', down: false },
        ],
      }),
    );
    expect(lines).toEqual([
      'advertise:  192.168.1.0/24 (approved), 10.0.0.0/8 (awaiting approval, LAN DOWN), exit node (not confirmed by the broker)',
      '            masquerading into the LAN',
    ]);
  });

  it('shows each route in use and its gateway, or why not', () => {
    const lines = gatewayLines(
      gateway({
        routes: [
          {
            prefix: '192.168.5.0/24',
            via: 'gw-b',
            gateways: [
              { name: 'gw-a', alive: false },
              { name: 'gw-b', alive: true },
            ],
            installed: true,
          },
          {
            prefix: '10.9.0.0/16',
            via: null,
            gateways: [{ name: 'gw-c', alive: true }],
            installed: false,
            reason: 'overlaps the local subnet 10.9.0.0/24',
          },
        ],
      }),
    );
    expect(lines).toEqual([
      'routes:     192.168.5.0/24 via gw-b  [gateways: gw-a (dead), gw-b]',
      '            10.9.0.0/16 not used: overlaps the local subnet 10.9.0.0/24  [gateways: gw-c]',
    ]);
  });

  it('says when routes are not accepted', () => {
    const lines = gatewayLines(
      gateway({
        prefs: { ...DEFAULT_GATEWAY_PREFS, acceptRoutes: false },
        routes: [
          {
            prefix: '10.9.0.0/16',
            via: null,
            gateways: [{ name: 'gw-c', alive: true }],
            installed: false,
            reason: 'not accepted (--accept-routes false)',
          },
        ],
      }),
    );
    expect(lines).toEqual(["routes:     other devices' routes not accepted (--accept-routes false)"]);
  });

  it('shows the exit node active, or blocked and why', () => {
    expect(gatewayLines(gateway({ exitNode: { name: 'exit-1', state: 'active', allowLan: true } }))).toEqual([
      'exit node:  exit-1, active (LAN reachable directly)',
    ]);
    expect(
      gatewayLines(
        gateway({
          exitNode: {
            name: 'exit-1',
            state: 'blocked',
            allowLan: false,
            reason: 'exit node exit-1 is offline',
          },
        }),
      ),
    ).toEqual(['exit node:  exit-1, BLOCKED: exit node exit-1 is offline']);
  });
});
