import {
  type AdvertiseMessage,
  EXIT_ROUTE,
  type GatewayStatus,
  type HostedVirtual,
  type NetmapPeer,
} from '@trellis/proto';
import type { Logger } from 'pino';
import type { ReachableVirtual } from '../agent/virtual-devices';
import { type Netmap, rulesOf } from '../control/netmap-tracker';
import { advertisedRoutes, type FullGatewayPrefs } from '../routes/gateway-prefs';
import {
  type GatewayPlan,
  hostKey,
  NO_PLAN,
  planGateway,
  planGatewayPolicy,
  type VirtualSkipped,
} from './gateway-policy';
import type { GatewayRole } from './gateway-role';
import type { LanProbe } from './lan-probe';

export interface GatewayDriverDeps {
  meshInterface: string;
  prefs(): FullGatewayPrefs;
  /** Absent: the LAN is not looked at (nothing is reported down; no role without a LAN interface). */
  lan?: LanProbe;
  /** Absent: this device never forwards (no firewall for it on this OS). */
  role?: GatewayRole;
  /** The routes to advertise (control.setAdvertise: sent now and after every authentication). */
  advertise(msg: AdvertiseMessage): void;
  /** The LAN changed what this device can serve: apply the mesh again. */
  reapply(): void;
  logger: Logger;
}

/** The LAN addresses to probe for the virtual devices served, as one comparable key. */
const lansKey = (hosted: readonly HostedVirtual[]) =>
  [...new Set(hosted.map((v) => v.lanAddress))].sort().join(' ');

/**
 * This device as a gateway: what it advertises (and which of it is down), and the forwarding role
 * for its approved routes and the virtual devices it serves. LAN state is probed on start, on a
 * settings change, on network events and when the netmap names other virtual devices.
 */
export class GatewayDriver {
  private plan: GatewayPlan = NO_PLAN;
  /** The virtual devices this device serves, from the last netmap. */
  private hosted: readonly HostedVirtual[] = [];
  /** lansKey of what the last probe looked at. */
  private probedLans = '';
  private wan: string | null = null;
  private onLink: string[] = [];
  /** This device's own addresses: no virtual device may map to one. */
  private local: string[] = [];
  /** Served virtual devices the last policy left out, and why; and those already logged. */
  private virtualSkipped: VirtualSkipped[] = [];
  private reportedSkips = new Set<string>();
  private lastAdvertise = '';
  private probing: Promise<void> | null = null;
  private again = false;
  private probed = false;

  constructor(private readonly deps: GatewayDriverDeps) {}

  /**
   * Probes the LAN of every advertised route; advertises again when what is down changed, and asks
   * for a mesh apply when what is served changed. Overlapping calls fold into one more probe.
   */
  refresh(): Promise<void> {
    if (this.probing) {
      this.again = true;
      return this.probing;
    }
    this.probing = (async () => {
      do {
        this.again = false;
        await this.probe().catch((err: Error) =>
          this.deps.logger.warn({ err: err.message }, 'probing the LAN of advertised routes failed'),
        );
      } while (this.again);
      this.probing = null;
      this.probed = true;
    })();
    return this.probing;
  }

  private async probe(): Promise<void> {
    const prefs = this.deps.prefs();
    const lan = this.deps.lan;
    const hosted = this.hosted;
    const virtualLans = hosted.map((v) => v.lanAddress);
    let plan: GatewayPlan = NO_PLAN;
    let onLink: string[] = [];
    let local: string[] = [];
    if (lan) {
      const lanOf = new Map<string, string | null>();
      for (const r of [...prefs.advertiseRoutes, ...virtualLans.map(hostKey)]) {
        if (!lanOf.has(r)) lanOf.set(r, await lan.routeInterface(r));
      }
      this.wan = prefs.advertiseExitNode ? await lan.defaultInterface() : null;
      onLink = prefs.advertiseExitNode ? await lan.onLinkSubnets() : [];
      local = hosted.length > 0 ? await lan.localAddresses() : [];
      plan = planGateway(
        prefs.advertiseRoutes,
        lanOf,
        this.deps.meshInterface,
        { advertised: prefs.advertiseExitNode, wanInterface: this.wan },
        virtualLans,
      );
    }
    this.probedLans = lansKey(hosted);
    // New subnets on an exit node's links are excluded at once: they count as a change too.
    const changed =
      JSON.stringify([plan, onLink, local]) !== JSON.stringify([this.plan, this.onLink, this.local]);
    this.plan = plan;
    this.onLink = onLink;
    this.local = local;
    this.sendAdvertise();
    if (changed) {
      if (plan.down.length > 0) this.deps.logger.warn({ down: plan.down }, 'advertised routes down');
      if (plan.virtualDown.length > 0) {
        this.deps.logger.warn({ down: plan.virtualDown }, 'virtual devices not served');
      }
      this.deps.reapply();
    }
  }

  /** Sends the advertisement when it differs from the last one sent. */
  private sendAdvertise(): void {
    const routes = advertisedRoutes(this.deps.prefs());
    const down = this.plan.down.filter((d) => routes.includes(d));
    const msg: AdvertiseMessage = { type: 'advertise', routes, ...(down.length > 0 ? { down } : {}) };
    const key = JSON.stringify(msg);
    if (key === this.lastAdvertise) return;
    this.lastAdvertise = key;
    this.deps.logger.info({ routes, down }, 'advertising routes');
    this.deps.advertise(msg);
  }

  /** Mesh addresses of peers that may use this device's routes: they get the fast keepalive. */
  clientsOf(netmap: Netmap, peers: readonly NetmapPeer[]): NetmapPeer[] {
    if (!this.deps.role?.active) return [];
    return peers.filter((p) => (rulesOf(netmap, p.id).routesIn ?? []).length > 0);
  }

  /**
   * Mesh addresses of the peers that may use this device as their exit node (approved, advertised,
   * WAN up): the firewall lets them reach its DNS stub, which resolves their other names.
   */
  exitClients(netmap: Netmap, peers: readonly NetmapPeer[]): string[] {
    if (!this.deps.prefs().advertiseExitNode || this.plan.down.includes(EXIT_ROUTE)) return [];
    if (!netmap.self.routes?.some((r) => r.prefix === EXIT_ROUTE && r.approved)) return [];
    return peers
      .filter((p) => (rulesOf(netmap, p.id).routesIn ?? []).some((a) => a.prefix === EXIT_ROUTE))
      .map((p) => p.address);
  }

  /**
   * The role for the current netmap; inside the mesh queue, after WireGuard took it. `virtual`: the
   * virtual devices this device reaches (they may be given access to the ones it serves).
   */
  async applyInQueue(
    netmap: Netmap,
    peers: readonly NetmapPeer[],
    virtual: readonly ReachableVirtual[] = [],
  ): Promise<void> {
    this.hosted = netmap.self.virtualDevices ?? [];
    const role = this.deps.role;
    if (!role) return;
    // Not before the LAN was looked at (a restarted gateway would drop its role for a moment), nor
    // before the LAN address of each virtual device it now serves was.
    if (!this.probed || lansKey(this.hosted) !== this.probedLans) await this.refresh();
    const prefs = this.deps.prefs();
    const advertised = advertisedRoutes(prefs);
    const approved = (netmap.self.routes ?? [])
      .filter((r) => r.approved && advertised.includes(r.prefix))
      .map((r) => r.prefix);
    const addresses = new Map([...peers, ...virtual].map((p) => [p.id, p.address]));
    const { policy, virtualSkipped } = planGatewayPolicy({
      meshInterface: this.deps.meshInterface,
      selfAddress: netmap.self.address,
      plan: this.plan,
      approved: approved.filter((r) => r !== EXIT_ROUTE || !this.plan.down.includes(EXIT_ROUTE)),
      masquerade: prefs.snatRoutes,
      wanInterface: this.wan,
      onLink: this.onLink,
      peers: peers.map((p) => ({ address: p.address, routesIn: rulesOf(netmap, p.id).routesIn ?? [] })),
      virtual: this.hosted,
      addressOf: (id) => addresses.get(id),
      localAddresses: this.local,
    });
    this.reportSkipped(virtualSkipped);
    await role.apply(policy);
  }

  /** Logs each virtual device left out once, while it stays out for that reason. */
  private reportSkipped(skipped: VirtualSkipped[]): void {
    this.virtualSkipped = skipped;
    const now = new Set<string>();
    for (const s of skipped) {
      const key = `${s.id} ${s.reason}`;
      now.add(key);
      if (!this.reportedSkips.has(key)) {
        this.deps.logger.warn({ virtualDevice: s.name, reason: s.reason }, 'virtual device not served');
      }
    }
    this.reportedSkips = now;
  }

  /** Leaves the role (on `down`); inside the mesh queue. */
  async end(): Promise<void> {
    await this.deps.role?.end();
  }

  /** The virtual devices it serves: forwarded now, or why not. */
  virtualStatus(): NonNullable<GatewayStatus['virtualDevices']> {
    const down = new Map(this.plan.virtualDown.map((d) => [d.lanAddress, d.reason]));
    const skipped = new Map(this.virtualSkipped.map((s) => [s.id, s.reason]));
    const why = !this.deps.role
      ? 'this device cannot forward (no gateway firewall on this system)'
      : !this.deps.lan
        ? 'the LAN is not looked at on this system'
        : null;
    return this.hosted.map((v) => {
      const reason =
        why ??
        down.get(v.lanAddress) ??
        skipped.get(v.id) ??
        (!this.plan.virtualServed.includes(v.lanAddress)
          ? 'its LAN address was not probed yet'
          : !this.deps.role?.active
            ? 'the gateway role is not running'
            : undefined);
      return {
        name: v.name,
        address: v.address,
        lanAddress: v.lanAddress,
        served: reason === undefined,
        ...(reason !== undefined ? { reason } : {}),
      };
    });
  }

  /** What it advertises and what the broker says of each. */
  advertised(netmap: Netmap | null): GatewayStatus['advertised'] {
    const held = new Map((netmap?.self.routes ?? []).map((r) => [r.prefix, r.approved]));
    return advertisedRoutes(this.deps.prefs()).map((prefix) => {
      const approved = held.get(prefix);
      return {
        prefix,
        ...(approved === undefined ? {} : { approved }),
        down: this.plan.down.includes(prefix),
      };
    });
  }
}
