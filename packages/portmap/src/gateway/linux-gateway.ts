import { readFile } from 'node:fs/promises';
import type { DefaultRoute, GatewayDiscovery } from './gateway-discovery';

// Linux: the IPv4 routing table in /proc/net/route. Addresses there are hex in host (little-endian)
// byte order; the default route has destination and mask 0 and the gateway flag (0x2) set.

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;

export function parseProcNetRoute(text: string): DefaultRoute | undefined {
  if (text.length > 1 << 20) return undefined;
  let best: { route: DefaultRoute; metric: number } | undefined;
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [iface, destination, gateway, flags, , , metric, mask] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    if (!/^[0-9A-Fa-f]{8}$/.test(gateway) || !/^[0-9A-Fa-f]{1,4}$/.test(flags)) continue;
    if (destination !== '00000000' || mask !== '00000000') continue;
    const flagBits = Number.parseInt(flags, 16);
    if ((flagBits & (RTF_UP | RTF_GATEWAY)) !== (RTF_UP | RTF_GATEWAY)) continue;
    const n = Number.parseInt(gateway, 16);
    const ip = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
    const m = /^[0-9]{1,10}$/.test(metric) ? Number(metric) : Number.POSITIVE_INFINITY;
    if (!best || m < best.metric) best = { route: { gateway: ip, interfaceName: iface }, metric: m };
  }
  return best?.route;
}

export class LinuxGatewayDiscovery implements GatewayDiscovery {
  constructor(private readonly path = '/proc/net/route') {}

  async defaultRoute(): Promise<DefaultRoute | undefined> {
    try {
      return parseProcNetRoute(await readFile(this.path, 'utf8'));
    } catch {
      return undefined;
    }
  }
}
