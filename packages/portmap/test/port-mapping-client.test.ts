import type { DefaultRoute, GatewayDiscovery } from '../src/gateway/gateway-discovery';
import { type PortMappedCandidate, PortMappingClient } from '../src/port-mapping-client';
import { type MappingProtocol, PortMapError, type PortMapper, type PortMapping } from '../src/types';

// The client's policy with scripted mappers and fake timers: protocol order, renewal at half the
// lifetime, starting over on failure, retry when nothing works, and clean removal on stop.

type Outcome = { externalPort: number; externalIp?: string; lifetime?: number } | 'fail' | 'throw';

class ScriptedMapper implements PortMapper {
  readonly calls: string[] = [];
  private mapOutcomes: Outcome[];
  private renewOutcomes: Outcome[];
  probeAnswer: boolean | 'throw' = true;

  constructor(
    readonly protocol: MappingProtocol,
    map: Outcome[],
    renew: Outcome[] = [],
  ) {
    this.mapOutcomes = map;
    this.renewOutcomes = renew;
  }

  probe(): Promise<boolean> {
    if (this.probeAnswer === 'throw') throw new Error('synchronous throw');
    return Promise.resolve(this.probeAnswer);
  }

  map(internalPort: number, lifetime: number): Promise<PortMapping> {
    this.calls.push(`map ${internalPort} ${lifetime}`);
    return this.outcome(this.mapOutcomes.shift() ?? 'fail', internalPort, lifetime);
  }

  renew(mapping: PortMapping): Promise<PortMapping> {
    this.calls.push(`renew ${mapping.externalPort}`);
    return this.outcome(this.renewOutcomes.shift() ?? 'fail', mapping.internalPort, mapping.lifetimeSeconds);
  }

  unmap(mapping: PortMapping): Promise<void> {
    this.calls.push(`unmap ${mapping.externalPort}`);
    return Promise.resolve();
  }

  private outcome(outcome: Outcome, internalPort: number, lifetime: number): Promise<PortMapping> {
    if (outcome === 'throw') throw new Error('synchronous throw');
    if (outcome === 'fail') return Promise.reject(new PortMapError(this.protocol, 'scripted failure'));
    const granted = outcome.lifetime ?? lifetime;
    return Promise.resolve({
      protocol: this.protocol,
      internalPort,
      externalIp: outcome.externalIp ?? '11.0.0.1',
      externalPort: outcome.externalPort,
      lifetimeSeconds: granted,
      expiresAt: Date.now() + granted * 1000,
    });
  }
}

class FixedRoute implements GatewayDiscovery {
  constructor(public route: DefaultRoute | undefined) {}
  defaultRoute(): Promise<DefaultRoute | undefined> {
    return Promise.resolve(this.route);
  }
}

const LAN_ROUTE: DefaultRoute = { gateway: '10.0.0.1', interfaceName: 'eth0' };

function setup(mappers: ScriptedMapper[], discovery = new FixedRoute(LAN_ROUTE)) {
  const gateways: string[] = [];
  const client = new PortMappingClient({
    internalPort: 51820,
    lifetimeSeconds: 100,
    discovery,
    retryDelayMs: 30_000,
    mappersFor: (gateway) => {
      gateways.push(gateway);
      return mappers;
    },
  });
  const candidates: Array<PortMappedCandidate | null> = [];
  const failures: string[] = [];
  client.on('candidate', (c) => candidates.push(c));
  client.on('failure', (f) => failures.push(f.protocol));
  return { client, candidates, failures, gateways };
}

const settle = () => jest.advanceTimersByTimeAsync(0);

describe('PortMappingClient', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('falls through PCP to NAT-PMP and does not try UPnP once mapped', async () => {
    const pcp = new ScriptedMapper('pcp', ['fail']);
    const natpmp = new ScriptedMapper('natpmp', [{ externalPort: 40000 }]);
    const upnp = new ScriptedMapper('upnp', [{ externalPort: 1 }]);
    const { client, candidates, failures, gateways } = setup([pcp, natpmp, upnp]);
    client.start();
    await settle();
    expect(gateways).toEqual(['10.0.0.1']);
    expect(candidates).toEqual([
      {
        endpoint: '11.0.0.1:40000',
        ip: '11.0.0.1',
        port: 40000,
        protocol: 'natpmp',
        expiresAt: expect.any(Number),
      },
    ]);
    expect(failures).toEqual(['pcp']);
    expect(upnp.calls).toEqual([]);
    expect(client.mapping?.externalPort).toBe(40000);
    await client.stop();
  });

  it('renews at half the granted lifetime without announcing an unchanged endpoint', async () => {
    const pcp = new ScriptedMapper(
      'pcp',
      [{ externalPort: 40000, lifetime: 60 }],
      [
        { externalPort: 40000, lifetime: 60 },
        { externalPort: 40000, lifetime: 60 },
      ],
    );
    const { client, candidates } = setup([pcp]);
    const mapped: number[] = [];
    client.on('mapped', (m) => mapped.push(m.externalPort));
    client.start();
    await settle();
    await jest.advanceTimersByTimeAsync(29_000);
    expect(pcp.calls).toEqual(['map 51820 100']);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(pcp.calls).toEqual(['map 51820 100', 'renew 40000']);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(pcp.calls).toHaveLength(3);
    expect(mapped).toEqual([40000, 40000, 40000]);
    expect(candidates).toHaveLength(1);
    await client.stop();
    expect(pcp.calls.at(-1)).toBe('unmap 40000');
    expect(candidates.at(-1)).toBeNull();
  });

  it('starts over when a renewal fails, announcing the new endpoint', async () => {
    const pcp = new ScriptedMapper('pcp', [{ externalPort: 40000 }, 'fail'], ['fail']);
    const natpmp = new ScriptedMapper('natpmp', [{ externalPort: 40001, externalIp: '11.0.0.9' }]);
    const { client, candidates } = setup([pcp, natpmp]);
    client.start();
    await settle();
    await jest.advanceTimersByTimeAsync(50_000);
    expect(pcp.calls).toEqual(['map 51820 100', 'renew 40000', 'unmap 40000', 'map 51820 100']);
    expect(candidates.map((c) => c && `${c.protocol} ${c.ip}:${c.port}`)).toEqual([
      'pcp 11.0.0.1:40000',
      'natpmp 11.0.0.9:40001',
    ]);
    await client.stop();
  });

  it('reports no candidate when nothing works, then retries later', async () => {
    const pcp = new ScriptedMapper('pcp', ['fail', { externalPort: 40000 }]);
    const upnp = new ScriptedMapper('upnp', ['throw']); // a synchronous throw is contained too
    const { client, candidates, failures } = setup([pcp, upnp]);
    client.start();
    await settle();
    expect(candidates).toEqual([]);
    expect(failures).toEqual(['pcp', 'upnp']);
    await jest.advanceTimersByTimeAsync(30_000);
    expect(candidates).toEqual([expect.objectContaining({ protocol: 'pcp', port: 40000 })]);
    await client.stop();
  });

  it('survives a missing default route and moves to a new gateway on refresh', async () => {
    const discovery = new FixedRoute(undefined);
    const pcp = new ScriptedMapper('pcp', [{ externalPort: 40000 }, { externalPort: 40002 }]);
    const { client, candidates, failures, gateways } = setup([pcp], discovery);
    client.start();
    await settle();
    expect(failures).toEqual(['gateway']);
    discovery.route = { gateway: '10.0.0.1', interfaceName: 'eth0' };
    await jest.advanceTimersByTimeAsync(30_000);
    expect(candidates).toHaveLength(1);
    discovery.route = { gateway: '192.168.1.1', interfaceName: 'wlan0' };
    client.refresh();
    await settle();
    expect(gateways).toEqual(['10.0.0.1', '192.168.1.1']);
    expect(pcp.calls).toEqual(['map 51820 100', 'unmap 40000', 'map 51820 100']);
    expect(candidates.map((c) => c?.port)).toEqual([40000, 40002]);
    await client.stop();
  });

  it('gives back a mapping granted after stop, without announcing it', async () => {
    let grant: (m: PortMapping) => void = () => undefined;
    const slow = new ScriptedMapper('pcp', []);
    slow.map = () => new Promise<PortMapping>((resolve) => (grant = resolve));
    const { client, candidates } = setup([slow]);
    client.start();
    await settle();
    const stopped = client.stop();
    grant({
      protocol: 'pcp',
      internalPort: 51820,
      externalIp: '11.0.0.1',
      externalPort: 40000,
      lifetimeSeconds: 100,
      expiresAt: Date.now() + 100_000,
    });
    await stopped;
    expect(slow.calls).toEqual(['unmap 40000']);
    expect(candidates).toEqual([]);
  });

  it('probe lists the protocols that answer, tolerating throwing mappers', async () => {
    const pcp = new ScriptedMapper('pcp', []);
    pcp.probeAnswer = 'throw';
    const natpmp = new ScriptedMapper('natpmp', []);
    const upnp = new ScriptedMapper('upnp', []);
    upnp.probeAnswer = false;
    const { client } = setup([pcp, natpmp, upnp]);
    expect(await client.probe()).toEqual(['natpmp']);
    expect(await setup([pcp], new FixedRoute(undefined)).client.probe()).toEqual([]);
  });
});
