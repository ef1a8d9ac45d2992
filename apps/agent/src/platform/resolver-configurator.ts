import type { Upstream } from '../dns/upstream-forwarder';

/** Where the account's names go: the agent's stub on the overlay address, for one domain. */
export interface ResolverSettings {
  interfaceName: string;
  /** The stub's address (port 53). */
  server: string;
  /** The account's domain (`acme.ts.example`): routed to the stub, and searched for short names. */
  domain: string;
  /** Every name, not only the domain, goes to the stub (an exit node is in use). */
  defaultRoute?: boolean;
}

/**
 * Split DNS: the OS sends the account's domain to the agent's stub and everything else where it
 * went before. One implementation per resolver (systemd-resolved, a plain resolv.conf, …).
 */
export interface ResolverConfigurator {
  readonly kind: 'resolved' | 'resolv-conf' | 'nrpt' | 'resolver-dir';
  /** Points the domain at the stub. Idempotent; called again when the address or domain changes. */
  apply(settings: ResolverSettings): Promise<void>;
  /** Puts back what the OS had before `apply`. Safe when nothing was applied. */
  restore(interfaceName: string): Promise<void>;
  /**
   * The nameservers the stub must pass other names to: resolv.conf sends every query to the stub,
   * resolved only the domain (none).
   */
  upstreams(): Promise<Upstream[]>;
  /**
   * Calls back when another program may have rewritten what `apply` set (a DHCP client writing
   * resolv.conf), so it is applied again. Absent: nothing else touches it. Returns a stop function.
   */
  watch?(onChange: () => void): () => void;
}
