import {
  CORE_GATEWAY,
  CORE_PREFIX_LEN,
  gatewayFor,
  HOSTS_GATEWAY,
  HOSTS_PREFIX_LEN,
  hostAddress,
  UNRESERVED_GATEWAY,
  UNRESERVED_PREFIX_LEN,
} from './addresses';
import { checkIfName } from './names';
import type { Namespace } from './namespace';

/** What Internet needs from the lab. */
export interface NamespaceFactory {
  addNamespace(role: string): Promise<Namespace>;
}

/** A machine on the lab internet with public addresses (the broker, echo servers). */
export class Host {
  constructor(
    readonly name: string,
    readonly ns: Namespace,
    readonly addresses: readonly string[],
  ) {}

  get address(): string {
    return this.addresses[0]!;
  }
}

/**
 * The lab "internet": one namespace whose bridge br0 joins every router WAN and internet host, and
 * which routes between the TEST-NET subnets and to routed sites' public LAN prefixes.
 */
export class Internet {
  private ports = 0;
  private hosts = 0;

  private constructor(
    private readonly lab: NamespaceFactory,
    readonly ns: Namespace,
  ) {}

  static async create(lab: NamespaceFactory): Promise<Internet> {
    const ns = await lab.addNamespace('inet');
    await addBridge(ns, 'br0');
    await ns.exec(['ip', 'addr', 'add', `${CORE_GATEWAY}/${CORE_PREFIX_LEN}`, 'dev', 'br0']);
    await ns.exec(['ip', 'addr', 'add', `${HOSTS_GATEWAY}/${HOSTS_PREFIX_LEN}`, 'dev', 'br0']);
    await ns.exec(['ip', 'addr', 'add', `${UNRESERVED_GATEWAY}/${UNRESERVED_PREFIX_LEN}`, 'dev', 'br0']);
    await ns.exec(['ip', 'link', 'set', 'br0', 'up']);
    await ns.sysctl('net.ipv4.ip_forward', 1);
    // Everyone shares one L2 segment: redirects would make hosts bypass the router.
    await ns.sysctl('net.ipv4.conf.all.send_redirects', 0);
    await ns.sysctl('net.ipv4.conf.br0.send_redirects', 0);
    await disableBridgeNetfilter(ns);
    return new Internet(lab, ns);
  }

  /** Connects `ns` to the internet bridge with a veth whose end in `ns` is called `ifname`. */
  async attach(ns: Namespace, ifname: string): Promise<void> {
    this.ports += 1;
    const port = checkIfName(`p${this.ports}`);
    await this.ns.exec([
      'ip',
      'link',
      'add',
      port,
      'netns',
      this.ns.name,
      'type',
      'veth',
      'peer',
      'name',
      checkIfName(ifname),
      'netns',
      ns.name,
    ]);
    await this.ns.exec(['ip', 'link', 'set', port, 'master', 'br0']);
    await this.ns.exec(['ip', 'link', 'set', port, 'up']);
    await ns.exec(['ip', 'link', 'set', ifname, 'up']);
  }

  /** Routes a public prefix (a routed site's LAN) to a router's WAN address. */
  async route(prefix: string, via: string): Promise<void> {
    await this.ns.exec(['ip', 'route', 'replace', prefix, 'via', via]);
  }

  async unroute(prefix: string): Promise<void> {
    await this.ns.exec(['ip', 'route', 'del', prefix]);
  }

  /** A host namespace with eth0 on the internet; default addresses come from 198.51.100.0/24. */
  async addHost(name: string, address?: string | string[]): Promise<Host> {
    this.hosts += 1;
    const addresses =
      address === undefined ? [hostAddress(this.hosts)] : Array.isArray(address) ? address : [address];
    const ns = await this.lab.addNamespace(`h-${name}`);
    await this.attach(ns, 'eth0');
    for (const a of addresses) {
      await ns.exec(['ip', 'addr', 'add', `${a}/${gatewayFor(a).prefixLen}`, 'dev', 'eth0']);
    }
    await ns.exec(['ip', 'route', 'add', 'default', 'via', gatewayFor(addresses[0]!).gateway]);
    return new Host(name, ns, addresses);
  }
}

/** A locally administered MAC for every lab bridge (each is alone in its L2 domain). */
const BRIDGE_MAC = '02:00:00:00:00:01';

/**
 * A bridge with a fixed MAC address. Left to itself, a bridge takes the lowest MAC of its ports, so
 * a port added later (a host, a roaming device) can change it; every neighbour's ARP entry for the
 * gateway on it then points at the old MAC and routed traffic stops until the entries age out
 * (seen: every agent lost the broker when the relay test added an attacker host).
 */
export async function addBridge(ns: Namespace, name: string): Promise<void> {
  await ns.exec(['ip', 'link', 'add', name, 'address', BRIDGE_MAC, 'type', 'bridge']);
}

/** With br_netfilter loaded, bridged frames would traverse the IP forward hooks; keep L2 plain. */
export async function disableBridgeNetfilter(ns: Namespace): Promise<void> {
  try {
    await ns.sysctl('net.bridge.bridge-nf-call-iptables', 0);
  } catch {
    // br_netfilter not loaded: nothing to disable
  }
}
