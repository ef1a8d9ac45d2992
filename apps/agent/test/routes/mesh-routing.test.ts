import pino from 'pino';
import { MeshRouting } from '../../src/routes/mesh-routing';
import { FakeWireGuard } from '../helpers/fake-wireguard';

describe('MeshRouting on network events', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('re-applies the routes once the local subnets changed (a LAN that may overlap a route)', async () => {
    let subnets = ['192.0.2.0/24'];
    let reapplies = 0;
    const routing = new MeshRouting({
      interfaceName: 'trellis0',
      backend: new FakeWireGuard(),
      network: {
        apply: async () => undefined,
        remove: async () => undefined,
        setRoutes: async () => undefined,
      },
      logger: pino({ level: 'silent' }),
      localSubnets: () => subnets,
      bypass: () => [],
      advertise: () => undefined,
      run: (job) => job(),
      reapply: () => {
        reapplies++;
      },
    });
    routing.networkEvent();
    await jest.advanceTimersByTimeAsync(1000);
    expect(reapplies).toBe(0);
    subnets = ['10.1.2.0/24', '192.0.2.0/24'];
    routing.networkEvent();
    routing.networkEvent();
    await jest.advanceTimersByTimeAsync(1000);
    expect(reapplies).toBe(1);
    // The same subnets in another order: nothing changed.
    subnets = ['192.0.2.0/24', '10.1.2.0/24'];
    routing.networkEvent();
    await jest.advanceTimersByTimeAsync(1000);
    expect(reapplies).toBe(1);
    await routing.closeInQueue();
  });
});
