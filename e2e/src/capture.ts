import type { Namespace } from './namespace';
import { tableFromJson } from './trellis/access';

/**
 * What leaves a device's physical interface, sorted by nftables (the lab has no tcpdump): a table
 * of our own (`inet labcap`, beside the agent's `inet trellis`, which it never touches) whose
 * postrouting chain counts every packet out of the interface into one class, and remembers the
 * destination of every packet that fits no allowed class. Postrouting sees locally made and
 * forwarded packets alike, after NAT.
 */

export interface CaptureOptions {
  /** The physical interface (a lab device's `eth0`). */
  ifname: string;
  /** The agent's WireGuard port: UDP from it is tunnel traffic. */
  wireguardPort: number;
  /** The broker host's addresses (control connection, reflector): the agent's bypass. */
  controlAddresses: readonly string[];
  /**
   * The local LAN (allowed when the exit node lets the LAN through), CIDR; multicast and broadcast
   * (SSDP, mDNS) count as LAN too. Omit to count all of it as a leak.
   */
  lan?: string;
}

export interface CaptureReading {
  wireguard: number;
  control: number;
  lan: number;
  /** DNS (port 53, TCP or UDP) to anything outside the allowed classes above. */
  dns: number;
  /** Anything else (IPv4). */
  other: number;
  /** IPv6 to anything but link-local and multicast (the lab uses no IPv6: any is a leak). */
  ipv6: number;
  /** Destinations of `dns` and `other`: `ADDR . PROTO . PORT` (TCP/UDP) or `ADDR . PROTO`. */
  leaks: string[];
}

const TABLE = 'labcap';

function script(o: CaptureOptions): string {
  const control = o.controlAddresses.length > 0 ? `{ ${o.controlAddresses.join(', ')} }` : null;
  return `table inet ${TABLE} {
  counter wireguard {}
  counter control {}
  counter lan {}
  counter dns {}
  counter other {}
  counter ipv6 {}
  set flows { type ipv4_addr . inet_proto . inet_service; flags dynamic; size 4096; }
  set bare { type ipv4_addr . inet_proto; flags dynamic; size 1024; }
  chain post {
    type filter hook postrouting priority 300; policy accept;
    oifname != "${o.ifname}" return
    meta nfproto ipv6 ip6 daddr != { fe80::/10, ff00::/8 } counter name ipv6 return
    meta nfproto != ipv4 return
    udp sport ${o.wireguardPort} counter name wireguard return
    ${control ? `ip daddr ${control} counter name control return` : ''}
    ${o.lan ? `ip daddr ${o.lan} th dport != 53 counter name lan return` : ''}
    ${o.lan ? 'ip daddr { 224.0.0.0/4, 255.255.255.255 } th dport != 53 counter name lan return' : ''}
    meta l4proto { tcp, udp } th dport 53 counter name dns add @flows { ip daddr . meta l4proto . th dport } return
    counter name other
    meta l4proto { tcp, udp } add @flows { ip daddr . meta l4proto . th dport } return
    add @bare { ip daddr . meta l4proto }
  }
}
`;
}

export class PacketCapture {
  private constructor(
    readonly ns: Namespace,
    readonly opts: CaptureOptions,
  ) {}

  /** Installs the counting table (replacing an earlier one): counts start at zero. */
  static async start(ns: Namespace, opts: CaptureOptions): Promise<PacketCapture> {
    const c = new PacketCapture(ns, opts);
    await c.reset();
    return c;
  }

  /** Zeroes the counters and forgets the destinations seen. */
  async reset(): Promise<void> {
    const exists = await this.ns.exec(['nft', 'list', 'table', 'inet', TABLE]).then(
      () => true,
      () => false,
    );
    await this.ns.nft(`${exists ? `delete table inet ${TABLE}\n` : ''}${script(this.opts)}`);
  }

  async read(): Promise<CaptureReading> {
    const { stdout } = await this.ns.exec(['nft', '-j', 'list', 'table', 'inet', TABLE]);
    const t = tableFromJson(stdout);
    const n = (name: string) => t.counters[name]?.packets ?? 0;
    return {
      wireguard: n('wireguard'),
      control: n('control'),
      lan: n('lan'),
      dns: n('dns'),
      other: n('other'),
      ipv6: n('ipv6'),
      leaks: [...(t.sets.flows ?? []), ...(t.sets.bare ?? [])].sort(),
    };
  }

  async stop(): Promise<void> {
    await this.ns.exec(['nft', 'delete', 'table', 'inet', TABLE]).catch(() => undefined);
  }
}

/** One line for test output: every class's packet count and the leaked destinations. */
export function describeCapture(r: CaptureReading): string {
  const leaks = r.leaks.length > 0 ? ` leaked to [${r.leaks.join(', ')}]` : '';
  return `wireguard ${r.wireguard}, control ${r.control}, lan ${r.lan}, dns ${r.dns}, other ${r.other}, ipv6 ${r.ipv6}${leaks}`;
}
