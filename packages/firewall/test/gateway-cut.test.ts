import {
  cutGatewayFlows,
  type GatewayPolicy,
  gatewayAllows,
  gatewayNarrowed,
  normalizeGateway,
} from '../src';
import { FakeRunner } from './support/fake-runner';

const base: GatewayPolicy = {
  meshInterface: 'wg0',
  selfAddress: '100.64.0.1',
  lan: { interfaceName: 'lan0', routes: ['192.168.1.0/24'], masquerade: true },
  virtualDevices: [{ meshAddress: '100.64.9.9', lanAddress: '192.168.1.50' }],
  access: [
    { peer: '100.64.0.2', destination: '192.168.1.0/24', allow: [{ proto: 'tcp', ports: [[80, 80]] }] },
    { peer: '100.64.0.2', destination: '100.64.9.9', allow: [{ proto: 'udp' }] },
    { peer: '100.64.0.3', destination: '192.168.1.0/25', allow: [{}] },
  ],
  exitNode: { wanInterface: 'eth0', peers: ['100.64.0.4'] },
};
const g = normalizeGateway(base);

describe('gateway flow cutting', () => {
  it.each([
    [{ proto: 'tcp', src: '100.64.0.2', dst: '192.168.1.7', sport: 5000, dport: 80 }, true],
    [{ proto: 'tcp', src: '100.64.0.2', dst: '192.168.1.7', sport: 5000, dport: 22 }, false],
    [{ proto: 'udp', src: '100.64.0.2', dst: '100.64.9.9', sport: 5000, dport: 53 }, true],
    // The virtual device's rules do not open its LAN address as a routed destination.
    [{ proto: 'udp', src: '100.64.0.2', dst: '192.168.1.50', sport: 5000, dport: 53 }, false],
    [{ proto: 'icmp', src: '100.64.0.3', dst: '192.168.1.100' }, true],
    [{ proto: 'icmp', src: '100.64.0.3', dst: '192.168.1.200' }, false],
    [{ proto: 'tcp', src: '100.64.0.4', dst: '203.0.113.5', sport: 1, dport: 443 }, true],
    [{ proto: 'tcp', src: '100.64.0.2', dst: '203.0.113.5', sport: 1, dport: 443 }, false],
  ])('judges %j: allowed %s', (flow, allowed) => {
    expect(gatewayAllows(g, flow)).toBe(allowed);
  });

  it('sees a narrowing only where something was taken away', () => {
    expect(gatewayNarrowed(undefined, g)).toBe(true);
    expect(gatewayNarrowed(g, g)).toBe(false);
    const wider = normalizeGateway({
      ...base,
      access: [...base.access, { peer: '100.64.0.5', destination: '192.168.1.0/24', allow: [{}] }],
    });
    expect(gatewayNarrowed(g, wider)).toBe(false);
    expect(gatewayNarrowed(wider, g)).toBe(true);
    expect(
      gatewayNarrowed(g, normalizeGateway({ ...base, exitNode: { wanInterface: 'eth0', peers: [] } })),
    ).toBe(true);
    expect(
      gatewayNarrowed(
        g,
        normalizeGateway({
          ...base,
          virtualDevices: [],
          access: base.access.slice(0, 1).concat(base.access.slice(2)),
        }),
      ),
    ).toBe(true);
  });

  it('deletes exactly the forwarded flows the policy forbids, by their full tuple', async () => {
    const runner = new FakeRunner()
      .on('conntrack -L', {
        stdout: [
          'tcp      6 299 ESTABLISHED src=100.64.0.2 dst=192.168.1.7 sport=5000 dport=22 src=192.168.1.7 dst=192.168.1.1 sport=22 dport=5000 [ASSURED] mark=0 use=1',
          'tcp      6 299 ESTABLISHED src=100.64.0.2 dst=192.168.1.7 sport=5001 dport=80 src=192.168.1.7 dst=192.168.1.1 sport=80 dport=5001 [ASSURED] mark=0 use=1',
          // Inbound to the gateway itself and flows it started: not forwarded, never touched here.
          'tcp      6 299 ESTABLISHED src=100.64.0.2 dst=100.64.0.1 sport=5002 dport=22 src=100.64.0.1 dst=100.64.0.2 sport=22 dport=5002 [ASSURED] mark=0 use=1',
          'udp      17 29 src=192.168.1.1 dst=192.168.1.53 sport=5353 dport=53 src=192.168.1.53 dst=192.168.1.1 sport=53 dport=5353 mark=0 use=1',
          'udp      17 29 src=100.64.0.6 dst=8.8.8.8 sport=4000 dport=53 src=8.8.8.8 dst=10.0.0.1 sport=53 dport=4000 mark=0 use=1',
        ].join('\n'),
      })
      .on('conntrack -D', {
        code: 0,
        stderr: 'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n',
      });
    expect(await cutGatewayFlows(runner.run, 'conntrack', g)).toEqual({ cut: 2 });
    expect(runner.lines()).toEqual([
      'conntrack -L',
      'conntrack -D -s 100.64.0.2 -d 192.168.1.7 -p tcp --sport 5000 --dport 22',
      'conntrack -D -s 100.64.0.6 -d 8.8.8.8 -p udp --sport 4000 --dport 53',
    ]);
  });

  it('cuts flows to a virtual device that was removed or moved to another LAN host', async () => {
    // As conntrack lists DNATed flows: the reply source is the LAN host each flow really went to.
    const row = (src: string, dst: string, sport: number, lan: string) =>
      `udp      17 29 src=${src} dst=${dst} sport=${sport} dport=53 src=${lan} dst=${src} sport=53 dport=${sport} mark=0 use=1`;
    const runner = new FakeRunner()
      .on('conntrack -L', {
        stdout: [
          // Still 100.64.9.9 -> 192.168.1.50, and udp is allowed: kept.
          row('100.64.0.2', '100.64.9.9', 5000, '192.168.1.50'),
          // 100.64.9.9 went to 192.168.1.51 before it moved to .50: cut, though udp is allowed.
          row('100.64.0.2', '100.64.9.9', 5001, '192.168.1.51'),
          // 100.64.9.8 is no virtual device any more: cut (its peer being an exit client opens nothing).
          row('100.64.0.4', '100.64.9.8', 5002, '192.168.1.60'),
          // Not DNATed (to another mesh device, not through the gateway's NAT): not ours, kept.
          row('100.64.0.2', '100.64.0.7', 5003, '100.64.0.7'),
        ].join('\n'),
      })
      .on('conntrack -D', {
        code: 0,
        stderr: 'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n',
      });
    expect(await cutGatewayFlows(runner.run, 'conntrack', g)).toEqual({ cut: 2 });
    expect(runner.lines()).toEqual([
      'conntrack -L',
      'conntrack -D -s 100.64.0.2 -d 100.64.9.9 -p udp --sport 5001 --dport 53',
      'conntrack -D -s 100.64.0.4 -d 100.64.9.8 -p udp --sport 5002 --dport 53',
    ]);
  });

  it('reports a failure instead of throwing, and counts a flow that ended meanwhile as nothing', async () => {
    const gone = new FakeRunner()
      .on('conntrack -L', {
        stdout:
          'tcp      6 299 ESTABLISHED src=100.64.0.2 dst=192.168.1.7 sport=5000 dport=22 src=192.168.1.7 dst=192.168.1.1 sport=22 dport=5000 mark=0 use=1\n',
      })
      .on('conntrack -D', {
        code: 1,
        stderr: 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n',
      });
    expect(await cutGatewayFlows(gone.run, 'conntrack', g)).toEqual({ cut: 0 });
    const missing = new FakeRunner().on('conntrack -L', { code: 127, stderr: 'conntrack: not found' });
    expect(await cutGatewayFlows(missing.run, 'conntrack', g)).toEqual({
      cut: 0,
      error: 'conntrack -L failed (exit 127): conntrack: not found',
    });
  });
});
