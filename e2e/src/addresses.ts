/**
 * The lab's address plan. Public space is TEST-NET (RFC 5737) so nothing can leak to a real network.
 *  - 192.0.2.0/24     lab internet core: the internet namespace is .1, site router WANs from .11
 *  - 198.51.100.0/24  internet hosts: gateway .1, hosts (broker, echo servers) from .10
 *  - 203.0.113.0/24   public LAN prefixes of routed sites: site k gets 203.0.113.(16k)/28
 *  - 10.k.0.0/24      private LAN of NAT site k: router .1, devices from .10
 *  - 100.127.k.0/24   CGNAT carrier segment of site k: carrier .1, home router .2 (100.64.0.0/10 space)
 *  - 11.0.0.0/24      WANs of routers whose daemon rejects TEST-NET (miniupnpd will not map on a
 *                     reserved address): internet .1, site k's router .(10+k). Never leaves the lab.
 */
export const CORE_GATEWAY = '192.0.2.1';
export const CORE_PREFIX_LEN = 24;
export const HOSTS_GATEWAY = '198.51.100.1';
export const HOSTS_PREFIX_LEN = 24;

export function routerWanAddress(siteIndex: number): string {
  return `192.0.2.${10 + siteIndex}`;
}

export const UNRESERVED_GATEWAY = '11.0.0.1';
export const UNRESERVED_PREFIX_LEN = 24;

/** WAN of site k when its router kind needs an address that does not look reserved. */
export function unreservedWanAddress(siteIndex: number): string {
  return `11.0.0.${10 + siteIndex}`;
}

export function hostAddress(hostIndex: number): string {
  return `198.51.100.${10 + hostIndex}`;
}

export interface LanPlan {
  /** Network in CIDR form, e.g. 10.1.0.0/24. */
  prefix: string;
  prefixLen: number;
  gateway: string;
  device(index: number): string;
}

export function privateLan(siteIndex: number): LanPlan {
  return {
    prefix: `10.${siteIndex}.0.0/24`,
    prefixLen: 24,
    gateway: `10.${siteIndex}.0.1`,
    device: (i) => `10.${siteIndex}.0.${10 + i}`,
  };
}

export function publicLan(siteIndex: number): LanPlan {
  if (siteIndex < 1 || siteIndex > 15) throw new Error(`routed site index ${siteIndex} outside 1..15`);
  const base = 16 * siteIndex;
  return {
    prefix: `203.0.113.${base}/28`,
    prefixLen: 28,
    gateway: `203.0.113.${base + 1}`,
    device: (i) => {
      if (i > 12) throw new Error('a routed site has room for 13 devices');
      return `203.0.113.${base + 2 + i}`;
    },
  };
}

export function carrierSegment(siteIndex: number): { carrier: string; home: string; prefixLen: number } {
  return { carrier: `100.127.${siteIndex}.1`, home: `100.127.${siteIndex}.2`, prefixLen: 24 };
}

/** Which gateway an internet host uses, from the /24 its address is in. */
export function gatewayFor(address: string): { gateway: string; prefixLen: number } {
  if (address.startsWith('198.51.100.')) return { gateway: HOSTS_GATEWAY, prefixLen: HOSTS_PREFIX_LEN };
  if (address.startsWith('192.0.2.')) return { gateway: CORE_GATEWAY, prefixLen: CORE_PREFIX_LEN };
  throw new Error(`${address} is not in a lab internet subnet (192.0.2.0/24 or 198.51.100.0/24)`);
}
