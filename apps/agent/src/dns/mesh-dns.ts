import { DnsServer, ResponseLimiter } from '@trellis/dns';
import type { DnsStatus, NetmapPeer, NetmapSelf } from '@trellis/proto';
import type { Logger } from 'pino';
import type { ExitDnsHook } from '../exit/exit-node-controller';
import { RESOLVED_STUB } from '../platform/resolved';
import type { ResolverConfigurator } from '../platform/resolver-configurator';
import { meshZoneOf, type ZoneVirtual } from './mesh-zone';
import { StubResponder } from './stub-responder';
import { type Upstream, UpstreamForwarder } from './upstream-forwarder';

export const DNS_PORT = 53;

/** A query from this device: its own overlay address (what a local client's source becomes) or loopback. */
function isLocalSource(source: string, stubAddress: string): boolean {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return s === stubAddress || s.startsWith('127.') || s === '::1';
}

/** Whose queries for other names the stub passes on: this device's own, and its exit node clients'. */
export function mayForwardFor(
  source: string,
  stubAddress: string,
  peerClients: ReadonlySet<string>,
): boolean {
  const s = source.startsWith('::ffff:') ? source.slice(7) : source;
  return isLocalSource(s, stubAddress) || peerClients.has(s);
}

/**
 * Every program on this device asks the stub (resolv.conf mode): the limit is for a runaway, not
 * for abuse from afar (only this device reaches it).
 */
const STUB_LIMITS = { perSecond: 20_000, burst: 40_000, slip: 2, maxSources: 1024 };

export interface MeshDnsOptions {
  interfaceName: string;
  /** Points the OS at the stub; null in `stub` mode. */
  resolver: ResolverConfigurator | null;
  logger: Logger;
  /** 53 but in tests. */
  port?: number;
  /** Where an exit node's stub listens on its mesh address: 53 but in tests. */
  exitPort?: number;
  /** Runs a job with the mesh's other changes (the agent's queue): a resolver rewritten by another program is put right in it. */
  run?: (job: () => Promise<void>) => Promise<void>;
}

/** The stub while it serves: bound to one address. */
interface Serving {
  address: string;
  port: number;
  server: DnsServer;
  stub: StubResponder;
  /** The forwarder's nameservers, as shown in status. */
  upstreams: string;
  /** Whether other names are forwarded at all (with an unusable exit node: to nobody, SERVFAIL). */
  forwards: boolean;
}

/**
 * The account's names on this device while the mesh is up: a stub on the overlay address that
 * answers them from the netmap (so they survive the broker being down, as the tunnels do), and the
 * OS resolver pointed at it. `close` puts the resolver back.
 */
export class MeshDns implements ExitDnsHook {
  private serving: Serving | null = null;
  /** The exit node in use (ExitDnsHook): null, none; address null, wanted but unusable. */
  private exit: { address: string | null } | null = null;
  /** Peers that use this device as their exit node: their other names are resolved here too. */
  private peerClients: ReadonlySet<string> = new Set();
  private domain = '';
  private lastError: string | null = null;
  private readonly log: Logger;
  /** What the last apply was given, for applying it again when the resolver was rewritten. */
  private last: {
    self: NetmapSelf;
    peers: readonly NetmapPeer[];
    serial: number;
    virtual: readonly ZoneVirtual[];
  } | null = null;
  private stopWatching: (() => void) | null = null;

  constructor(private readonly opts: MeshDnsOptions) {
    this.log = opts.logger.child({ part: 'dns' });
  }

  /** Follows a netmap, after the overlay address is on the interface. Never throws: names are not the mesh. */
  async apply(
    self: NetmapSelf,
    peers: readonly NetmapPeer[],
    serial: number,
    /** Virtual devices it reaches (planVirtual). */
    virtual: readonly ZoneVirtual[] = [],
  ): Promise<void> {
    this.last = { self, peers, serial, virtual };
    let resolverTried = false;
    try {
      const zone = meshZoneOf(self, peers, serial, virtual);
      this.domain = zone.domain;
      const upstreams = await this.upstreams(self.address);
      const key = upstreams
        .map((u) => (u.port === DNS_PORT ? u.address : `${u.address}:${u.port}`))
        .join(' ');
      // With an exit node wanted there is always a forwarder: none reachable means SERVFAIL, not a leak.
      const forwarder = upstreams.length > 0 || this.exit ? new UpstreamForwarder(upstreams) : null;
      const s = this.serving;
      if (s && s.address === self.address) {
        s.stub.setZone(zone);
        if (s.upstreams !== key || s.forwards !== (forwarder !== null)) s.stub.setForwarder(forwarder);
        s.upstreams = key;
        s.forwards = forwarder !== null;
      } else {
        await this.stopServing();
        const address = self.address;
        const stub = new StubResponder(zone, forwarder, (source) =>
          mayForwardFor(source, address, this.peerClients),
        );
        const server = new DnsServer(stub, this.log, new ResponseLimiter(STUB_LIMITS));
        const { port } = await server.listen(self.address, this.opts.port ?? DNS_PORT);
        this.serving = {
          address: self.address,
          port,
          server,
          stub,
          upstreams: key,
          forwards: forwarder !== null,
        };
        this.log.info({ listen: `${self.address}:${port}`, domain: zone.domain }, 'dns stub serving');
      }
      // Watched before the first apply succeeds: a failed one is tried again when the watch fires.
      this.watchResolver();
      resolverTried = true;
      await this.opts.resolver?.apply({
        interfaceName: this.opts.interfaceName,
        server: self.address,
        domain: zone.domain,
        ...(this.exit ? { defaultRoute: true } : {}),
      });
      this.lastError = null;
    } catch (err) {
      const message = (err as Error).message;
      if (message !== this.lastError) this.log.warn({ err: message }, 'names on this device are not served');
      this.lastError = message;
      // No stub (it could not bind at a new address): the OS must not keep asking one that is gone,
      // unless an exit node is in use: then names fail rather than go to the LAN's resolver in clear,
      // so the resolver is pointed at the mesh even when this apply failed before getting there.
      if (this.exit) {
        if (!resolverTried) await this.pointForExit(self.address);
      } else if (!this.serving) await this.unpointResolver();
    }
  }

  /** Every name to the mesh (where nothing may answer): with an exit node, failing beats leaking. */
  private async pointForExit(server: string): Promise<void> {
    this.watchResolver();
    if (!this.domain) return; // no zone was ever made (a device name it refuses): no domain to give
    await this.opts.resolver
      ?.apply({ interfaceName: this.opts.interfaceName, server, domain: this.domain, defaultRoute: true })
      .catch((err: Error) => this.log.warn({ err: err.message }, 'resolver not pointed at the mesh'));
  }

  private async unpointResolver(): Promise<void> {
    this.stopWatching?.();
    this.stopWatching = null;
    await this.opts.resolver
      ?.restore(this.opts.interfaceName)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'resolver not restored'));
  }

  /** Another program rewrote the resolver's configuration: the last netmap's names are applied again. */
  private watchResolver(): void {
    const resolver = this.opts.resolver;
    if (this.stopWatching || !resolver?.watch) return;
    const run = this.opts.run ?? ((job) => job());
    this.stopWatching = resolver.watch(() => {
      void run(async () => {
        const last = this.last;
        if (!last || !this.stopWatching) return; // closed meanwhile
        await this.apply(last.self, last.peers, last.serial, last.virtual);
      });
    });
  }

  /**
   * Names outside the mesh follow the exit node (ExitDnsHook): every name comes to the stub (the
   * resolver's default route), which passes the others to the exit node's stub and nowhere else.
   */
  async followExitNode(exit: { address: string | null } | null): Promise<void> {
    if (exit?.address === this.exit?.address && (exit === null) === (this.exit === null)) return;
    this.exit = exit;
    const last = this.last;
    if (last) await this.apply(last.self, last.peers, last.serial, last.virtual);
  }

  /**
   * The peers that may use this device as their exit node (the exit node side): their queries for
   * other names are answered through this device's own nameservers. The firewall must let them
   * reach udp/tcp 53 here (PeerGuard.enforce's `dnsFrom`).
   */
  async setPeerClients(addresses: readonly string[]): Promise<void> {
    const next = new Set(addresses);
    if (next.size === this.peerClients.size && [...next].every((a) => this.peerClients.has(a))) return;
    this.peerClients = next;
    const last = this.last;
    if (last) await this.apply(last.self, last.peers, last.serial, last.virtual);
  }

  /** Stops the stub and puts the OS resolver back as it was. */
  async close(): Promise<void> {
    this.last = null;
    await this.unpointResolver();
    await this.stopServing();
  }

  status(): DnsStatus {
    const s = this.serving;
    return {
      domain: this.domain,
      listen: s ? `${s.address}:${s.port}` : null,
      resolver: this.opts.resolver?.kind ?? 'none',
      upstreams: s?.upstreams ? s.upstreams.split(' ') : [],
      lastError: this.lastError,
    };
  }

  /**
   * Where other names go: the exit node's stub while one is wanted; else the resolver's original
   * nameservers, never the stub itself (with systemd-resolved, which sends only the domain here,
   * its own stub, for the peers that use this device as their exit node).
   */
  private async upstreams(stubAddress: string): Promise<Upstream[]> {
    if (this.exit) {
      return this.exit.address ? [{ address: this.exit.address, port: this.opts.exitPort ?? DNS_PORT }] : [];
    }
    const all = (await this.opts.resolver?.upstreams()) ?? [];
    const own = all.filter((u) => u.address !== stubAddress || u.port !== (this.opts.port ?? DNS_PORT));
    if (own.length === 0 && this.peerClients.size > 0 && this.opts.resolver?.kind === 'resolved') {
      return [{ address: RESOLVED_STUB, port: DNS_PORT }];
    }
    return own;
  }

  private async stopServing(): Promise<void> {
    const s = this.serving;
    this.serving = null;
    await s?.server.close();
  }
}
