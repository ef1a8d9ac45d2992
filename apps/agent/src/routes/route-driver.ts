import { isIP } from 'node:net';
import { type GatewayStatus, type NetmapPeer, type NetmapSelf, parseEndpoint } from '@trellis/proto';
import type { Logger } from 'pino';
import { type Netmap, rulesOf } from '../control/netmap-tracker';
import type { ExitNodeInput } from '../exit/exit-node-controller';
import type { KeepaliveSetting } from '../path/wireguard-effects';
import type { NetworkConfigurator } from '../platform/network-configurator';
import type { WireGuardBackend } from '../wireguard/backend';
import { PERSISTENT_KEEPALIVE_SECONDS } from '../wireguard/config-diff';
import { GatewayLiveness, LIVENESS_SAMPLE_MS } from './gateway-liveness';
import type { ExitNodePinStore, FullGatewayPrefs } from './gateway-prefs';
import {
  type ExitNodePin,
  type ExitResolution,
  emptySelection,
  exitNodeProblem,
  type KeepOut,
  NOT_EXIT_NODE,
  type RouteSelection,
  resolveExitNode,
  selectRoutes,
} from './route-selector';

/** Keepalive for peers that carry (or may carry) a route we use, and for a gateway's clients. */
export const GATEWAY_KEEPALIVE_SECONDS = 2;

/** What the driver calls of helper D's ExitNodeController. */
export interface ExitNodeLike {
  apply(input: ExitNodeInput): Promise<void>;
  remove(): Promise<void>;
  status(): GatewayStatus['exitNode'];
}

export interface RouteDriverDeps {
  interfaceName: string;
  backend: Pick<WireGuardBackend, 'getState' | 'apply'>;
  network: NetworkConfigurator;
  prefs(): FullGatewayPrefs;
  /** Subnets this device is attached to (never routed into the mesh). */
  localSubnets(): string[];
  /** Addresses that must not go through an exit node (brokers, relays, reflectors). */
  bypass(): string[];
  exit?: ExitNodeLike;
  /** Where the exit node's pin is kept (GatewaySettings; absent: in memory only). */
  exitNodePins?: ExitNodePinStore;
  /** Runs a job in the mesh queue. */
  run(job: () => Promise<void>): Promise<void>;
  /** A gateway's liveness changed: apply the mesh again (moves prefixes between peers). */
  reapply(): void;
  logger: Logger;
  now?: () => number;
}

/**
 * The IO around selectRoutes: it feeds the selector the netmap, the settings and each gateway's
 * liveness (sampled every second while a choice depends on it), and applies the outcome: allowed
 * IPs (through the mesh's WireGuard diff), kernel routes, keepalive, and the exit node's routing.
 */
export class RouteDriver {
  private selection: RouteSelection = emptySelection();
  private readonly liveness = new GatewayLiveness();
  private readonly now: () => number;
  /** Public keys that get the 2 s keepalive, and each watched peer's id by key. */
  private fast = new Set<string>();
  private watchedKeys = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private lastAlive = '';
  /** Peers the broker last reported offline. */
  private offline = new Set<string>();
  private stopped = false;
  /** Each peer's WireGuard endpoint when last read (by public key): routes must not cover them. */
  private endpoints = new Map<string, string>();
  /** The default gateway and DNS servers when last read (NetworkConfigurator.keepOutHosts). */
  private systemHosts: KeepOut[] = [];
  private readonly pins: ExitNodePinStore;
  /** What the exit node choice resolved to at the last select; null: none chosen. */
  private exit: { wanted: string; resolved: ExitResolution<NetmapPeer> } | null = null;

  constructor(private readonly deps: RouteDriverDeps) {
    this.now = deps.now ?? Date.now;
    this.pins = deps.exitNodePins ?? memoryPins(deps.prefs);
  }

  /** Chooses the gateways for this netmap; call before WireGuard's diff (it reads extraAllowedIps). */
  select(netmap: Netmap, peers: readonly NetmapPeer[]): RouteSelection {
    const prefs = this.deps.prefs();
    const now = this.now();
    // A gateway back online (restarted) has a new tunnel: it must answer before traffic returns.
    for (const p of peers) if (p.online && this.offline.has(p.id)) this.liveness.forget(p.id);
    this.offline = new Set(peers.filter((p) => !p.online).map((p) => p.id));
    const routesOut = new Map(peers.map((p) => [p.id, rulesOf(netmap, p.id).routesOut ?? []]));
    const wanted = prefs.exitNode;
    this.exit = wanted ? { wanted, resolved: resolveExitNode(wanted, this.pins.exitNodePin(), peers) } : null;
    const exit = this.exit?.resolved.peer;
    const current = new Map<string, string>();
    for (const [id, prefixes] of this.selection.allowedIps) for (const p of prefixes) current.set(p, id);
    const select = () =>
      selectRoutes({
        peers,
        routesOut,
        acceptRoutes: prefs.acceptRoutes,
        exitNode: exit?.id ?? null,
        localSubnets: this.deps.localSubnets(),
        ownRoutes: prefs.advertiseRoutes,
        alive: (id) => this.liveness.alive(id, now),
        current,
        proven: (id) => this.liveness.proven(id, now),
        keepOut: this.keepOut(peers),
      });
    this.selection = select();
    if (!this.selection.sample && this.liveness.tracking) {
      // No longer sampled: a verdict from back then would never be revised.
      this.liveness.observe(now, []);
      this.selection = select();
    }
    this.lastAlive = this.liveness.verdicts(now);
    this.watchedKeys = new Map(
      peers.filter((p) => this.selection.watched.has(p.id)).map((p) => [p.publicKey, p.id]),
    );
    return this.selection;
  }

  /** Reads the default gateway and DNS servers again; true when they changed. */
  async refreshHosts(): Promise<boolean> {
    const hosts = await Promise.resolve(this.deps.network.keepOutHosts?.() ?? []).catch((err: Error) => {
      this.deps.logger.warn({ err: err.message }, 'default gateway and DNS servers not read');
      return this.systemHosts;
    });
    if (JSON.stringify(hosts) === JSON.stringify(this.systemHosts)) return false;
    this.systemHosts = hosts;
    return true;
  }

  /** Hosts a route must not cover: control plane, peers' public endpoints and live ones, system's. */
  private keepOut(peers: readonly NetmapPeer[]): KeepOut[] {
    const out: KeepOut[] = this.deps.bypass().map((address) => ({
      address,
      what: 'the broker, relay or reflector',
    }));
    // Not LAN candidates: a gateway's own LAN address is one, inside the prefix it serves; a client
    // elsewhere reaches it only through the tunnel, and one on that LAN skips the route anyway.
    for (const p of peers) {
      const remote = (p.candidates ?? []).filter((c) => c.kind !== 'lan').map((c) => c.endpoint);
      const hosts = new Set(
        [...remote, this.endpoints.get(p.publicKey)]
          .map((e) => (e ? parseEndpoint(e) : null))
          .filter((e) => e?.family === 4)
          .map((e) => e!.host),
      );
      for (const address of hosts) out.push({ address, what: `peer ${p.name}'s endpoint` });
    }
    return [...out, ...this.systemHosts];
  }

  /** The prefixes a peer carries for us, beyond its own address. */
  extraAllowedIps(peerId: string): string[] {
    return this.selection.allowedIps.get(peerId) ?? [];
  }

  /**
   * A peer's keepalive. Gateways (and a gateway's clients) keep a 2 s one even while idle: a hot
   * standby whose liveness is always known, and which is proven alive before traffic goes back to it.
   */
  keepaliveOf(publicKey: string): KeepaliveSetting {
    return this.fast.has(publicKey)
      ? { on: GATEWAY_KEEPALIVE_SECONDS, off: GATEWAY_KEEPALIVE_SECONDS }
      : { on: PERSISTENT_KEEPALIVE_SECONDS, off: 0 };
  }

  /**
   * Kernel routes, keepalive and the exit node for the last selection; inside the mesh queue,
   * after WireGuard took the netmap. `clients`: peers that may use this device's routes.
   */
  async applyInQueue(
    netmap: Netmap,
    peers: readonly NetmapPeer[],
    clients: readonly NetmapPeer[],
  ): Promise<void> {
    const s = this.selection;
    // Changed (DNS has no netlink event): this selection may cover them; the next apply selects again.
    if (await this.refreshHosts()) {
      this.deps.reapply();
      return;
    }
    await this.deps.network.setRoutes(this.deps.interfaceName, s.kernelRoutes);
    this.fast = new Set([...this.watchedKeys.keys(), ...clients.map((p) => p.publicKey)]);
    await this.fixKeepalive();
    await this.keepExitPin();
    await this.applyExit(netmap, peers, s);
    this.schedule();
  }

  /**
   * Gateways get the 2 s keepalive; a peer that stopped being one goes back to the path logic's
   * 25 s (which turns it off once the path is idle).
   */
  private async fixKeepalive(): Promise<void> {
    const device = await this.deps.backend.getState();
    this.endpoints = new Map(device.peers.flatMap((p) => (p.endpoint ? [[p.publicKey, p.endpoint]] : [])));
    const want = (p: { publicKey: string; persistentKeepalive: number }) =>
      this.fast.has(p.publicKey)
        ? GATEWAY_KEEPALIVE_SECONDS
        : p.persistentKeepalive === GATEWAY_KEEPALIVE_SECONDS
          ? PERSISTENT_KEEPALIVE_SECONDS
          : p.persistentKeepalive;
    const changed = device.peers.filter((p) => want(p) !== p.persistentKeepalive);
    // WireGuard sends at once only when keepalive goes from off to on; from 25 s, its next one
    // would wait out the old timer. Off first, then on: the 2 s rhythm starts now.
    const rearm = changed.filter((p) => p.persistentKeepalive > 0 && want(p) === GATEWAY_KEEPALIVE_SECONDS);
    if (rearm.length > 0) {
      await this.deps.backend.apply({
        peers: rearm.map((p) => ({ publicKey: p.publicKey, persistentKeepalive: 0 })),
      });
    }
    const peers = changed.map((p) => ({ publicKey: p.publicKey, persistentKeepalive: want(p) }));
    if (peers.length > 0) await this.deps.backend.apply({ peers });
  }

  /** First resolved (or its key rotated): from now on only this device is the exit node. */
  private async keepExitPin(): Promise<void> {
    const exit = this.exit;
    if (!exit?.resolved.peer || samePin(exit.resolved.pin, this.pins.exitNodePin())) return;
    await this.pins
      .pinExitNode(exit.wanted, exit.resolved.pin)
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'exit node pin not saved'));
  }

  private async applyExit(netmap: Netmap, peers: readonly NetmapPeer[], s: RouteSelection): Promise<void> {
    const exit = this.deps.exit;
    if (!exit) return;
    const prefs = this.deps.prefs();
    const wanted = this.exit?.wanted ?? null;
    const resolved = this.exit?.resolved;
    const found = resolved?.peer ?? undefined;
    const routesOut = new Map(peers.map((p) => [p.id, rulesOf(netmap, p.id).routesOut ?? []]));
    const problem = found ? exitNodeProblem(found, routesOut) : null;
    const chosen =
      found && problem === null ? { id: found.id, name: found.name, address: found.address } : null;
    const input: ExitNodeInput = {
      interfaceName: this.deps.interfaceName,
      wanted,
      chosen,
      active: chosen !== null && s.exitGateway === chosen.id,
      allowLan: prefs.exitNodeAllowLan,
      bypass: this.deps.bypass(),
    };
    if (wanted && !chosen) {
      input.unavailable =
        resolved && !resolved.peer
          ? resolved.unavailable
          : problem === NOT_EXIT_NODE
            ? 'not-exit-node'
            : 'not-allowed';
    }
    await exit.apply(input);
  }

  /** Samples the counters every second while a choice depends on liveness. */
  private schedule(): void {
    if (this.stopped || this.timer || !this.selection.sample) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.deps
        .run(() => this.sample())
        .catch((err: Error) =>
          this.deps.logger.warn({ err: err.message }, 'sampling gateway liveness failed'),
        )
        .finally(() => this.schedule());
    }, LIVENESS_SAMPLE_MS);
  }

  private async sample(): Promise<void> {
    if (this.stopped) return;
    const device = await this.deps.backend.getState();
    this.endpoints = new Map(device.peers.flatMap((p) => (p.endpoint ? [[p.publicKey, p.endpoint]] : [])));
    const now = this.now();
    this.liveness.observe(
      now,
      device.peers
        .filter((p) => this.watchedKeys.has(p.publicKey))
        .map((p) => ({ peerId: this.watchedKeys.get(p.publicKey)!, rxBytes: p.rxBytes, txBytes: p.txBytes })),
    );
    const alive = this.liveness.verdicts(now);
    if (alive === this.lastAlive) return;
    this.lastAlive = alive;
    this.deps.logger.info({ alive }, 'gateway liveness changed');
    this.deps.reapply();
  }

  /** On `down`: routes, exit routing and sampling go; inside the mesh queue. */
  async closeInQueue(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.selection = emptySelection();
    await this.deps.network.setRoutes(this.deps.interfaceName, []);
    await this.deps.exit?.remove();
  }

  rows(): GatewayStatus['routes'] {
    return this.selection.rows;
  }
}

const samePin = (a: ExitNodePin, b: ExitNodePin | null) => a.id === b?.id && a.publicKey === b.publicKey;

/** Pins kept for this run only, for a driver without GatewaySettings. */
function memoryPins(prefs: () => FullGatewayPrefs): ExitNodePinStore {
  let kept: { wanted: string; pin: ExitNodePin } | null = null;
  return {
    exitNodePin: () => (kept && kept.wanted === prefs().exitNode ? kept.pin : null),
    pinExitNode: async (wanted, pin) => {
      kept = { wanted, pin };
    },
  };
}

/** IP addresses of brokers, relays and reflectors (host:port or a bare host; names are left out). */
export function bypassAddresses(hosts: ReadonlyArray<string | null | undefined>): string[] {
  const out = new Set<string>();
  for (const h of hosts) {
    if (!h) continue;
    const bare = h.startsWith('[')
      ? h.slice(1, h.indexOf(']'))
      : h.split(':').length === 2
        ? h.split(':')[0]!
        : h;
    if (isIP(bare)) out.add(bare);
  }
  return [...out].sort();
}

/**
 * What an exit node must leave on the direct path: every broker address known, every relay (its
 * UDP host and its TCP fallback's host) and every reflector; names are left out.
 */
export function exitBypass(
  brokers: readonly string[],
  self: Pick<NetmapSelf, 'relays' | 'reflectors'> | undefined,
): string[] {
  return bypassAddresses([
    ...brokers,
    ...(self?.relays ?? []).flatMap((r) => [r.address, r.tcp ? new URL(r.tcp.url).hostname : null]),
    ...(self?.reflectors ?? []).map((r) => r.endpoint),
  ]);
}
