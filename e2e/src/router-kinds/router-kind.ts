import type { Namespace } from '../namespace';

/** What a router kind knows about the router it configures. Interface names are fixed. */
export interface RouterContext {
  /** The router's WAN address (for a CGNAT chain: its address on the carrier segment). */
  wanAddress: string;
  /** LAN network, CIDR. */
  lanPrefix: string;
  /** Device name → LAN address, for rules that name devices (port forwards). */
  devices: ReadonlyMap<string, string>;
}

export const WAN_IF = 'wan0';
export const LAN_IF = 'br0';

/**
 * One kind of site router (NATLAB.md). A kind only produces nftables rules; the Site builds the
 * namespaces, links and addresses. The ruleset is re-applied whole (after `flush ruleset`)
 * whenever a device joins, so rules may depend on the device list.
 */
export interface RouterKind {
  /** Short name for logs and test titles, e.g. `port-restricted`. */
  readonly name: string;
  /** `public`: the LAN uses a routed public prefix (no NAT); `private`: 10.k.0.0/24 behind NAT. */
  readonly lan: 'public' | 'private';
  /** Set when a carrier-grade NAT sits between this router and the internet. */
  readonly carrier?: CarrierNat;
  /** `unreserved`: WAN in 11.0.0.0/24 instead of TEST-NET (for daemons that refuse reserved space). */
  readonly wan?: 'test-net' | 'unreserved';
  ruleset(ctx: RouterContext): string;
  /**
   * Daemons the router runs (e.g. miniupnpd), started once the site and its first devices exist.
   * Processes go through `host` so the lab stops them on teardown.
   */
  startServices?(router: Namespace, host: RouterServiceHost, ctx: RouterContext): Promise<void>;
}

/** What a router kind's services need from the lab. */
export interface RouterServiceHost {
  /** A per-run directory for config and state files. */
  readonly runDir: string;
}

/** The carrier router of a CGNAT chain. */
export interface CarrierNat {
  /** Ruleset of the carrier namespace; its WAN is wan0, the customer side cust0. */
  ruleset(carrierWan: string): string;
}

/** Input chain every router has: real routers drop unsolicited traffic to themselves (NATLAB trap). */
export function inputChain(lanIf: string = LAN_IF): string {
  return `
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    iifname "${lanIf}" accept
    ct state established,related accept
  }`;
}
