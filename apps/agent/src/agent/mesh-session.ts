import type { Agent } from 'node:https';
import type { KeyPair } from '@trellis/crypto';
import type { AgentState, NetmapPeer, StatusResponse } from '@trellis/proto';
import type { Logger } from 'pino';
import {
  ControlClient,
  type ControlClientHandlers,
  type ControlClientOptions,
} from '../control/control-client';
import type { Netmap } from '../control/netmap-tracker';
import type { MeshDns } from '../dns/mesh-dns';
import { ClockOffsetEstimator, type PeerPathStatus } from '../path';
import { localAddresses, localSubnets } from '../platform/candidates';
import type { NetworkConfigurator } from '../platform/network-configurator';
import { RelayRttProber } from '../relay/relay-rtt';
import { RelayTcpProxy } from '../relay/relay-tcp-proxy';
import { MeshRouting, type MeshRoutingOptions } from '../routes/mesh-routing';
import { exitBypass } from '../routes/route-driver';
import {
  type Enrollment,
  netmapFromSaved,
  type SavedNetmap,
  type StateStore,
  savedNetmapOf,
} from '../state/state-store';
import { createBrokerAgent } from '../trust/broker-trust';
import { describeTarget } from '../trust/broker-url';
import type { WireGuardBackend } from '../wireguard/backend';
import { diffWireGuardConfig } from '../wireguard/config-diff';
import { isEmptyUpdate, type WgDeviceState } from '../wireguard/types';
import { desiredConfigFromNetmap, pathPeersFromNetmap, reflectorReadd } from './desired-config';
import { NetinfoReport } from './netinfo-report';
import { PathDriver } from './path-driver';
import { PathStateReporter } from './path-state-reporter';
import type { PeerGuard } from './peer-guard';
import type { GatewayPortMapping } from './port-mapping';
import type { SerialQueue } from './serial-queue';
import { VirtualDevices } from './virtual-devices';

/** Netlink events come in bursts (a route, then its address); one probe after they settle. */
const NETWORK_EVENT_SETTLE_MS = 300;

/** What a session uses of the agent's options. */
export interface MeshSessionOptions extends MeshRoutingOptions {
  store: StateStore;
  backend: WireGuardBackend;
  network: NetworkConfigurator;
  logger: Logger;
  interfaceName: string;
  listenPort: number;
  /** Starts watching candidates; calls back on every change. Returns a stop function. */
  watchCandidates: (onChange: (c: string[]) => void) => () => void;
  /**
   * Every address, link or route change, candidates or not (a new default route leaves the
   * addresses alone but may have cut the control connection's path). Returns a stop function.
   */
  watchNetwork?: (onEvent: () => void) => () => void;
  /** Asks the gateway to forward the listen port (UPnP-IGD / NAT-PMP / PCP); none when absent. */
  portMapping?: (listenPort: number) => GatewayPortMapping;
  /** Hook for tests (fake timers, backoff). */
  controlOptions?: Partial<ControlClientOptions>;
  /** Key pins and the firewall (the daemon always has one; absent in tests that need neither). */
  guard?: PeerGuard;
  /**
   * Makes each session's names (the stub and the OS resolver's pointer to it), given how to run a
   * job with the mesh's other changes; none: DNS is off.
   */
  meshDns?: (run: (job: () => Promise<void>) => Promise<void>) => MeshDns;
}

/** What outlives a session: the WireGuard interface (its removal may fail) and the agent's state. */
export interface MeshSessionHost {
  /** Mesh changes (WireGuard + OS), one at a time; shared with the agent. */
  queue: SerialQueue;
  interfaceUp(): boolean;
  /** Brings WireGuard up unless it is; inside the queue. */
  startInterface(): Promise<void>;
  setState(state: AgentState): void;
  deviceRemoved(): void;
  meshError(err: Error): void;
  /** The broker accepted a connection authenticated with this key (settles a pending rotation). */
  keyConfirmed(publicKey: string): void;
}

/**
 * Everything that exists only while the mesh is up: the control connection, the path logic, relay
 * probes, port mapping, candidate watching and the netmap. `start` brings it up, `close` stops it.
 */
export class MeshSession {
  netmap: Netmap | null = null;
  /** The netmap's peers the guard accepted (all of them without a guard), as last applied. */
  private trusted: readonly NetmapPeer[] = [];
  /** The netmap's virtual devices this device routes to (through trusted gateways), as last applied. */
  readonly virtual: VirtualDevices;
  netmapSource: 'broker' | 'disk' | 'none' = 'none';
  readonly control: ControlClient;
  private readonly paths: PathDriver;
  /** Each peer's path for the dashboard's topology (reported to the broker). */
  private readonly pathStates: PathStateReporter;
  private readonly relayProber: RelayRttProber;
  private bypassSeen = ''; // the exit bypass last applied: a broker change may alter it
  private readonly portMapper: GatewayPortMapping | null;
  private readonly dns: MeshDns | null;
  /** Subnet routes, exit node and the gateway role. */
  readonly routing: MeshRouting;
  private readonly clock = new ClockOffsetEstimator();
  private readonly log: Logger;
  private stopWatching: () => void = () => undefined;
  private stopNetworkEvents: () => void = () => undefined;
  private probeTimer: NodeJS.Timeout | null = null;

  /** A burst of netlink events (ours included: the overlay route) makes one probe of the broker. */
  private networkEvent(): void {
    // Every event: the one that brings a LAN route back may come late in a burst.
    this.routing.networkEvent();
    if (this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      this.control.probe();
    }, NETWORK_EVENT_SETTLE_MS);
  }
  private readonly netinfoReport = new NetinfoReport((msg) => this.control.setNetinfo(msg));

  constructor(
    private readonly opts: MeshSessionOptions,
    private readonly host: MeshSessionHost,
    private readonly enrollment: Enrollment,
    private readonly keyPair: KeyPair,
    /** The netmap saved on disk; its serial is the control connection's hint. */
    private readonly saved: SavedNetmap | null,
  ) {
    this.log = opts.logger;
    this.virtual = new VirtualDevices(this.log);
    // The path logic owns every peer's endpoint, so it exists before any netmap is applied.
    this.paths = new PathDriver({
      selfPublicKey: keyPair.publicKey,
      backend: opts.backend,
      listenPort: opts.listenPort,
      run: (job) => host.queue.run(job),
      allowedIpsOf: (key) => this.allowedIpsOf(key),
      keepaliveOf: (key) => this.routing.keepaliveOf(key),
      meshUp: () => host.interfaceUp(),
      send: (report) => this.control.sendPath(report),
      openTcpRelay: (msg, onReconnected) =>
        new RelayTcpProxy({
          tcp: msg.tcp!,
          allocationId: msg.allocationId,
          listenPort: opts.listenPort,
          onReconnected,
          logger: this.log.child({ relay: msg.relayName, peerId: msg.peerId }),
        }),
      logger: this.log,
      onStep: () => this.pathStates.changed(),
    });
    this.pathStates = new PathStateReporter({
      statuses: () => this.paths.status(),
      send: (msg) => this.control.sendPath(msg),
    });
    this.relayProber = new RelayRttProber({
      logger: this.log,
      onRtts: (rtts) => this.netinfoReport.setRelayRtts(rtts),
    });
    this.control = new ControlClient({
      brokerUrls: enrollment.brokerUrls,
      agent: createBrokerAgent(enrollment.trust),
      deviceId: enrollment.deviceId,
      keyPair,
      brokerPublicKey: enrollment.brokerPublicKey,
      logger: this.log,
      ...(saved ? { lastSerial: saved.serial } : {}),
      ...opts.controlOptions,
      handlers: this.controlHandlers(),
    });
    this.portMapper = opts.portMapping?.(opts.listenPort) ?? null;
    this.dns = opts.meshDns?.((job) => host.queue.run(job)) ?? null;
    this.routing = new MeshRouting({
      ...opts,
      localSubnets: () => localSubnets(opts.interfaceName),
      bypass: () => {
        const list = exitBypass(this.control.brokers.knownAddresses(), this.netmap?.self);
        this.bypassSeen = list.join(' ');
        return list;
      },
      advertise: (msg) => this.control.setAdvertise(msg),
      run: (job) => host.queue.run(job),
      reapply: () => this.reapply('routes'),
    });
  }

  /** Queues a mesh apply (settings, LAN or a gateway's liveness changed). */
  reapply(kind: string): void {
    void this.host.queue.run(() => this.applyMesh(kind)).catch((err: Error) => this.host.meshError(err));
  }

  /** Applies the saved netmap (the broker's snapshot replaces it), then connects and watches the network. */
  async start(): Promise<void> {
    this.relayProber.start();
    this.routing.start();
    const saved = this.saved;
    if (saved && saved.self.id === this.enrollment.deviceId) {
      this.netmap = netmapFromSaved(saved);
      this.netmapSource = 'disk';
      this.host.setState('offline');
      this.log.info({ serial: saved.serial, peers: saved.peers.length }, 'mesh from saved netmap');
      await this.host.queue.run(() => this.applyMesh('disk')).catch((err: Error) => this.host.meshError(err));
    }
    this.stopNetworkEvents = this.opts.watchNetwork?.(() => this.networkEvent()) ?? (() => undefined);
    this.stopWatching = this.opts.watchCandidates((candidates) => {
      this.log.info({ candidates }, 'local candidates');
      this.control.setEndpoints(candidates);
      // Moved to another network: a control connection from an address we lost is dead; redo it now.
      const addresses = localAddresses();
      this.control.networkChanged((a) => addresses.has(a));
      // Our own network changed: rediscover at once (ARCHITECTURE: retry direct on a network change),
      // with the peers' LAN addresses that are on our links now: moved onto a peer's own LAN, its
      // LAN address is the only way to it when the router does not hairpin.
      void this.paths.networkChanged(
        this.netmap ? pathPeersFromNetmap(this.trusted, localSubnets(this.opts.interfaceName)) : undefined,
      );
      void this.relayProber.probeNow();
      this.refreshReflectorSessions('network changed');
      this.portMapper?.refresh();
    });
    const mapper = this.portMapper;
    if (mapper) {
      mapper.on('candidate', (c) => {
        this.log.info({ portMapped: c?.endpoint ?? null }, 'port mapping');
        this.netinfoReport.setPortMapped(c?.endpoint ?? null);
      });
      mapper.start();
    }
    this.control.start();
  }

  /** Stops everything and returns the overlay prefix the mesh used (for removing its routes). */
  async close(): Promise<string | null> {
    this.paths.stop();
    this.pathStates.stop();
    this.relayProber.stop();
    this.netinfoReport.reset();
    await this.portMapper?.stop().catch(() => undefined);
    this.control.stop();
    this.stopWatching();
    this.stopNetworkEvents();
    if (this.probeTimer) clearTimeout(this.probeTimer);
    const prefix = this.netmap?.self.overlayPrefix ?? null;
    // Queued mesh jobs of this session see no netmap and do nothing.
    this.netmap = null;
    this.netmapSource = 'none';
    // In the queue: a mesh job already running may be pointing the resolver at the stub.
    const dns = this.dns;
    if (dns) await this.host.queue.run(() => dns.close());
    await this.host.queue.run(() => this.routing.closeInQueue());
    return prefix;
  }

  /** Brings WireGuard and the OS to what the current netmap asks for. Runs inside the queue. */
  async applyMesh(kind: string): Promise<void> {
    const netmap = this.netmap;
    if (!netmap) return; // left the mesh while this job waited
    await this.host.startInterface();
    this.relayProber.setRelays(netmap.self.relays ?? []);
    this.paths.setRelayHosts((netmap.self.relays ?? []).map((r) => r.address));
    const guard = this.opts.guard;
    const peers = guard ? guard.trusted(netmap.peers) : netmap.peers;
    this.trusted = peers;
    const virtual = this.virtual.update(netmap, peers);
    // The firewall first: a peer reaches WireGuard only once the rules for it are in place.
    const exitClients = this.routing.exitClients(netmap, peers);
    await guard?.enforce(this.opts.interfaceName, netmap, peers, exitClients, virtual.reachable);
    this.routing.select(netmap, peers);
    const desired = desiredConfigFromNetmap(
      { ...netmap, peers },
      this.keyPair.privateKey,
      this.opts.listenPort,
      (id) => this.routing.extraAllowedIps(id),
      virtual.reachable,
    );
    const current = await this.opts.backend.getState();
    const update = diffWireGuardConfig(desired, current);
    if (!isEmptyUpdate(update)) await this.opts.backend.apply(update);
    await this.opts.network.apply(this.opts.interfaceName, netmap.self.address, netmap.self.overlayPrefix);
    await this.routing.applyInQueue(netmap, peers, virtual.reachable);
    await this.dns?.setPeerClients(exitClients);
    await this.dns?.apply(netmap.self, peers, netmap.serial, virtual.reachable);
    await this.paths.setPeersInQueue(pathPeersFromNetmap(peers, localSubnets(this.opts.interfaceName)));
    await guard?.flush();
    this.netinfoReport.flush();
    this.log.info(
      { serial: netmap.serial, source: kind, peers: netmap.peers.length, changes: update.peers.length },
      'mesh applied',
    );
  }

  /** Another list of broker instances, or another trust (`agent`): the control connection starts over. */
  setBrokers(urls: readonly string[], agent: Agent): void {
    this.control.setBrokers(urls, agent);
  }

  /** Shows the path logic a WireGuard read made for status; inside the queue. */
  observeInQueue(device: WgDeviceState): Promise<void> {
    return this.paths.observeInQueue(device);
  }

  dnsStatus(): StatusResponse['dns'] {
    return this.dns?.status();
  }

  pathStatus(): PeerPathStatus[] {
    return this.paths.status();
  }

  netinfo(): NonNullable<StatusResponse['netinfo']> {
    return {
      reflexive: this.netmap?.self.reflexive ?? [],
      mappingType: this.netmap?.self.mappingType ?? null,
      portMapped: this.netinfoReport.portMapped,
      brokerRttMs: this.clock.rttMs,
    };
  }

  private controlHandlers(): ControlClientHandlers {
    return {
      onNetmap: (netmap, kind) => this.onNetmap(netmap, kind),
      onConnected: () => {
        this.host.setState('connected');
        const target = this.control.brokers.current;
        this.log.info({ broker: target ? describeTarget(target) : null }, 'broker connected');
        this.host.keyConfirmed(this.control.authKey.publicKey);
        const bypass =
          this.netmap && exitBypass(this.control.brokers.knownAddresses(), this.netmap.self).join(' ');
        if (bypass && bypass !== this.bypassSeen) this.reapply('routes'); // another broker or resolution
        this.refreshReflectorSessions('reconnected');
        // A restarted broker knows no pair: relayed ones are taken up again with their allocation.
        void this.paths.controlConnected();
        this.pathStates.connected();
      },
      onDisconnected: (reason) => {
        this.host.setState(this.netmap ? 'offline' : 'connecting');
        this.log.warn({ reason }, 'broker disconnected');
      },
      onDeviceRemoved: () => this.host.deviceRemoved(),
      onClockSample: (sample) => this.clock.addSample(sample),
      onPunch: (msg) => {
        this.log.info({ peerId: msg.peerId, attemptId: msg.attemptId, candidates: msg.candidates }, 'punch');
        void this.paths.punch(msg, this.clock.offsetMs ?? 0);
      },
      onRelay: (msg) => {
        this.log.info(
          { peerId: msg.peerId, relay: msg.relayName, endpoint: msg.endpoint, tcp: msg.tcp !== undefined },
          'relay',
        );
        void this.paths.relay(msg);
      },
      onRelayRelease: (msg) => {
        this.log.info({ peerId: msg.peerId, allocationId: msg.allocationId }, 'relay released');
        void this.paths.relayRelease(msg);
      },
    };
  }

  private onNetmap(netmap: Netmap, kind: 'snapshot' | 'delta'): void {
    this.netmap = netmap;
    this.netmapSource = 'broker';
    const saved = savedNetmapOf(netmap);
    void this.host.queue
      .run(async () => {
        if (this.netmap !== netmap) return; // a newer one is queued behind us
        await this.opts.store.saveNetmap(saved);
        await this.applyMesh(kind);
      })
      .catch((err: Error) => this.host.meshError(err));
  }

  /**
   * Re-adds the reflector peers, so WireGuard sends each a fresh initiation now: after a reconnect
   * (we may have moved: the broker holds our punches until its reflectors see where we are now) or
   * a local network change, instead of when the 25 s keepalive next goes out. Nothing before the
   * mesh is up: bringing it up adds them, which initiates anyway.
   */
  private refreshReflectorSessions(why: string): void {
    void this.host.queue
      .run(async () => {
        const reflectors = this.netmap?.self.reflectors ?? [];
        if (!this.host.interfaceUp() || reflectors.length === 0) return;
        await this.opts.backend.apply(reflectorReadd(reflectors));
        this.log.debug({ why, reflectors: reflectors.length }, 'reflector sessions refreshed');
      })
      .catch((err: Error) => this.log.warn({ err: err.message }, 'refreshing reflector sessions failed'));
  }

  private allowedIpsOf(publicKey: string): string[] | null {
    const peer = this.trusted.find((p) => p.publicKey === publicKey);
    if (!peer) return null;
    const own = peer.allowedIps.length > 0 ? peer.allowedIps : [`${peer.address}/32`];
    return [...own, ...this.routing.extraAllowedIps(peer.id), ...this.virtual.allowedIps(peer.id)];
  }
}
