import type { AdvertiseMessage, GatewayStatus, NetmapPeer } from '@trellis/proto';
import type { Logger } from 'pino';
import type { ReachableVirtual } from '../agent/virtual-devices';
import type { Netmap } from '../control/netmap-tracker';
import { GatewayDriver } from '../gateway/gateway-driver';
import type { GatewayRole } from '../gateway/gateway-role';
import type { LanProbe } from '../gateway/lan-probe';
import type { KeepaliveSetting } from '../path/wireguard-effects';
import type { NetworkConfigurator } from '../platform/network-configurator';
import type { WireGuardBackend } from '../wireguard/backend';
import { DEFAULT_GATEWAY_PREFS, type ExitNodePinStore, type FullGatewayPrefs } from './gateway-prefs';
import { type ExitNodeLike, RouteDriver } from './route-driver';

/** LAN events come in bursts; one probe once they settle (well within the second the broker should hear). */
const LAN_SETTLE_MS = 200;

/** What the mesh session's options give the routes and the gateway role. */
export interface MeshRoutingOptions {
  /** The gateway settings in force (absent: the defaults). */
  gatewayPrefs?: () => FullGatewayPrefs;
  /** Where the chosen exit node's pin is saved (GatewaySettings; absent: kept in memory). */
  exitNodePins?: ExitNodePinStore;
  /** Where advertised routes leave this device (absent: none is reported down; no gateway role). */
  lanProbe?: LanProbe;
  /** Forwarding rules and ip_forward (absent: this device never forwards). */
  gatewayRole?: GatewayRole;
  /** The exit node's routing (absent: an exit node is never used). */
  exitNode?: ExitNodeLike;
}

/**
 * At a start that stays down (no gateway role, no exit node): what a crashed run left — ip_forward,
 * the forwarding rules, the exit routing — goes back now.
 */
export async function restoreLeftovers(opts: MeshRoutingOptions, log: Logger): Promise<void> {
  await opts.gatewayRole
    ?.recover()
    .catch((err: Error) => log.warn({ err: err.message }, 'ip_forward was not restored'));
  await opts.exitNode
    ?.remove()
    .catch((err: Error) => log.warn({ err: err.message }, 'exit routing was not removed'));
}

export interface MeshRoutingDeps extends MeshRoutingOptions {
  interfaceName: string;
  backend: Pick<WireGuardBackend, 'getState' | 'apply'>;
  network: NetworkConfigurator;
  logger: Logger;
  localSubnets(): string[];
  bypass(): string[];
  advertise(msg: AdvertiseMessage): void;
  run(job: () => Promise<void>): Promise<void>;
  /** Queues a mesh apply. */
  reapply(): void;
}

/** Subnet routes and exit node for one mesh session: this device as a client and as a gateway. */
export class MeshRouting {
  private readonly routes: RouteDriver;
  private readonly gateway: GatewayDriver;
  private readonly prefs: () => FullGatewayPrefs;
  private settle: NodeJS.Timeout | null = null;
  private roleError: string | null = null;
  /** Local subnets when last seen: a LAN plugged in may now overlap an installed route. */
  private subnets: string;

  constructor(private readonly deps: MeshRoutingDeps) {
    this.prefs = deps.gatewayPrefs ?? (() => DEFAULT_GATEWAY_PREFS);
    this.subnets = this.localSubnetsKey();
    this.routes = new RouteDriver({
      ...deps,
      prefs: this.prefs,
      ...(deps.exitNode ? { exit: deps.exitNode } : {}),
    });
    this.gateway = new GatewayDriver({
      meshInterface: deps.interfaceName,
      prefs: this.prefs,
      ...(deps.lanProbe ? { lan: deps.lanProbe } : {}),
      ...(deps.gatewayRole ? { role: deps.gatewayRole } : {}),
      advertise: deps.advertise,
      reapply: deps.reapply,
      logger: deps.logger,
    });
  }

  start(): void {
    void this.gateway.refresh();
    void this.routes.refreshHosts();
  }

  /** A netlink event: is every advertised route's LAN still up? Do the local subnets still clear our routes? */
  networkEvent(): void {
    if (this.settle) return;
    this.settle = setTimeout(() => {
      this.settle = null;
      void this.gateway.refresh();
      void this.routes.refreshHosts().then((hostsChanged) => {
        const subnets = this.localSubnetsKey();
        if (subnets === this.subnets && !hostsChanged) return;
        this.subnets = subnets;
        this.deps.reapply();
      });
    }, LAN_SETTLE_MS);
  }

  private localSubnetsKey(): string {
    return [...this.deps.localSubnets()].sort().join(',');
  }

  /** The settings changed: advertise again and re-apply. */
  prefsChanged(): void {
    void this.gateway.refresh();
    this.deps.reapply();
  }

  /** Peers that use this device as their exit node (PeerGuard's dnsFrom, MeshDns.setPeerClients). */
  exitClients(netmap: Netmap, peers: readonly NetmapPeer[]): string[] {
    return this.gateway.exitClients(netmap, peers);
  }

  /** Before WireGuard's diff: picks the gateways (allowed IPs). */
  select(netmap: Netmap, peers: readonly NetmapPeer[]): void {
    this.routes.select(netmap, peers);
  }

  extraAllowedIps(peerId: string): string[] {
    return this.routes.extraAllowedIps(peerId);
  }

  keepaliveOf(publicKey: string): KeepaliveSetting {
    return this.routes.keepaliveOf(publicKey);
  }

  /**
   * After WireGuard took the netmap: the gateway role, kernel routes, keepalive, exit node.
   * `virtual`: the virtual devices this device reaches (planVirtual).
   */
  async applyInQueue(
    netmap: Netmap,
    peers: readonly NetmapPeer[],
    virtual: readonly ReachableVirtual[] = [],
  ): Promise<void> {
    // A role that cannot be set up must not take the mesh down with it: it shows in status.
    await this.gateway.applyInQueue(netmap, peers, virtual).then(
      () => {
        this.roleError = null;
      },
      (err: Error) => {
        if (err.message !== this.roleError)
          this.deps.logger.error({ err: err.message }, 'gateway role failed');
        this.roleError = err.message;
      },
    );
    await this.routes.applyInQueue(netmap, peers, this.gateway.clientsOf(netmap, peers));
  }

  /** On `down`: everything this session routed or forwarded goes. Inside the mesh queue. */
  async closeInQueue(): Promise<void> {
    if (this.settle) clearTimeout(this.settle);
    this.settle = null;
    await this.routes.closeInQueue();
    await this.gateway.end();
  }

  status(netmap: Netmap | null): GatewayStatus {
    const virtualDevices = this.gateway.virtualStatus();
    return {
      prefs: this.prefs(),
      advertised: this.gateway.advertised(netmap),
      routes: this.routes.rows(),
      exitNode: this.deps.exitNode?.status() ?? null,
      ...(virtualDevices.length > 0 ? { virtualDevices } : {}),
    };
  }
}
