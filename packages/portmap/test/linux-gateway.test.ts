import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxGatewayDiscovery, parseProcNetRoute } from '../src/gateway/linux-gateway';

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0100A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
`;

describe('Linux default-route discovery', () => {
  it('picks the default route with the lowest metric, decoding little-endian hex', () => {
    expect(parseProcNetRoute(ROUTES)).toEqual({ gateway: '10.0.0.1', interfaceName: 'eth0' });
  });

  it('ignores routes without the gateway flag, junk lines, and finds nothing in an empty table', () => {
    expect(parseProcNetRoute(ROUTES.replace(/0003/g, '0001'))).toBeUndefined();
    expect(parseProcNetRoute('Iface\n\ngarbage line\neth0 00000000 zz 0003 0 0 0 00000000')).toBeUndefined();
    expect(parseProcNetRoute('')).toBeUndefined();
  });

  it('reads a routes file and tolerates a missing one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trl-route-'));
    try {
      await writeFile(join(dir, 'route'), ROUTES);
      expect(await new LinuxGatewayDiscovery(join(dir, 'route')).defaultRoute()).toEqual({
        gateway: '10.0.0.1',
        interfaceName: 'eth0',
      });
      expect(await new LinuxGatewayDiscovery(join(dir, 'missing')).defaultRoute()).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
