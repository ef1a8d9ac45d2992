import { hostname, release } from 'node:os';
import type { KeyPair } from '@trellis/crypto';
import {
  type AgentState,
  type BrokerTrust,
  type NetinfoMessage,
  type NetmapPeer,
  PROTOCOL_VERSION,
  type StatusResponse,
  type UpRequest,
} from '@trellis/proto';
import type { Logger } from 'pino';
import { ControlClient, type ControlClientOptions } from '../control/control-client';
import { enroll } from '../control/enroll-client';
import type { Netmap } from '../control/netmap-tracker';
import {
  ClockOffsetEstimator,
  candidatesFromEndpoints,
  onLinkCandidates,
  type PathPeer,
  wgUpdateForEffect,
} from '../path';
import { localAddresses, localSubnets } from '../platform/candidates';
import type { NetworkConfigurator } from '../platform/network-configurator';
import { RelayRttProber } from '../relay/relay-rtt';
import { RelayTcpProxy } from '../relay/relay-tcp-proxy';
import type { Enrollment, StateStore } from '../state/state-store';
import { createBrokerAgent } from '../trust/broker-trust';
import { parseBrokerUrl } from '../trust/broker-url';
import { waitFor } from '../util/wait';
import type { WireGuardBackend } from '../wireguard/backend';
import { diffWireGuardConfig } from '../wireguard/config-diff';
import type { EndpointSelector } from '../wireguard/endpoint-selector';
import { isEmptyUpdate, type WgDeviceState } from '../wireguard/types';
import { desiredConfigFromNetmap } from './desired-config';
import { PathDriver } from './path-driver';
import type { GatewayPortMapping } from './port-mapping';
import { ReflectorEndpoints } from './reflector-endpoints';
import { SerialQueue } from './serial-queue';
import { buildStatus } from './status';

export interface AgentOptions {
  store: StateStore;
  backend: WireGuardBackend;
  network: NetworkConfigurator;
  logger: Logger;
  interfaceName: string;
  listenPort: number;
  /** Reads this device's current LAN candidates. */
  readCandidates: () => string[];
  /** Starts watching candidates; calls back on every change. Returns a stop function. */
  watchCandidates: (onChange: (c: string[]) => void) => () => void;
  /** Overrides the path logic's endpoints (tests); by default the PathManager owns them. */
  endpointSelector?: EndpointSelector;
  /** Asks the gateway to forward the listen port (UPnP-IGD / NAT-PMP / PCP); none when absent. */
  portMapping?: (listenPort: number) => GatewayPortMapping;
  /** Hook for tests (fake timers, backoff). */
  controlOptions?: Partial<ControlClientOptions>;
  /** How long `up` waits for the first netmap before answering. */
  upWaitMs?: number;
}

export class UserError extends Error {}

/**
 * The daemon's brain: enrollment, the control connection, and turning netmaps into WireGuard and
 * OS configuration. Every mesh change runs through one queue so changes never interleave.
 */
export class Agent {
  private keyPair: KeyPair | null = null;
  private enrollment: Enrollment | null = null;
  private netmap: Netmap | null = null;
  private netmapSource: 'broker' | 'disk' | 'none' = 'none';
  private control: ControlClient | null = null;
  private stopWatching: (() => void) | null = null;
  private meshUp = false;
  private state: AgentState = 'stopped';
  private lastError: string | null = null;
  /** Mesh changes (WireGuard + OS), one at a time. */
  private readonly queue = new SerialQueue();
  /** User operations (up, down, shutdown, removal), one at a time, so two `up`s cannot race. */
  private readonly ops = new SerialQueue();
  private readonly selector: EndpointSelector;
  private readonly reflectorEndpoints = new ReflectorEndpoints();
  private paths: PathDriver | null = null;
  private clock = new ClockOffsetEstimator();
  private portMapper: GatewayPortMapping | null = null;
  private portMapped: string | null = null;
  private lastNetinfo = '';
  private relayProber: RelayRttProber | null = null;
  /** Round trip to each relay with a TCP listener (relay id → ms), for netinfo. */
  private relayRtts: Record<string, number> = {};
  private readonly log: Logger;

  constructor(private readonly opts: AgentOptions) {
    this.selector = opts.endpointSelector ?? this.reflectorEndpoints;
    this.log = opts.logger;
    opts.backend.onRecreated(() => {
      this.log.warn('WireGuard interface was re-created; re-applying the mesh');
      void this.queue.run(() => this.applyMesh('recreated')).catch((err: Error) => this.meshError(err));
    });
  }

  async start(): Promise<void> {
    await this.opts.store.init();
    this.keyPair = await this.opts.store.loadOrCreateKeyPair();
    this.enrollment = await this.opts.store.loadEnrollment();
    if (!this.enrollment) {
      this.state = 'needs-enrollment';
      this.log.info('not enrolled; waiting for `trellis up --broker URL --setup-key KEY`');
    } else if (!this.enrollment.wantUp) {
      this.state = 'stopped';
      this.log.info('enrolled but down; waiting for `trellis up`');
    } else {
      await this.bringUp();
    }
  }

  up(req: UpRequest): Promise<string> {
    return this.ops.run(() => this.doUp(req));
  }

  private async doUp(req: UpRequest): Promise<string> {
    const current = this.enrollment;
    if (req.setupKey) {
      const broker = req.broker ?? current?.brokerUrl;
      if (!broker) throw new UserError('--broker URL is required to enroll');
      const sameBroker = current && current.brokerUrl === parseBrokerUrl(broker).toString();
      const trust = req.trust ?? (sameBroker ? current.trust : {});
      await this.enroll(broker, req.setupKey, req.name, trust);
    } else {
      if (!current)
        throw new UserError('this device is not enrolled: run `trellis up --broker URL --setup-key KEY`');
      if (req.broker && parseBrokerUrl(req.broker).toString() !== current.brokerUrl) {
        throw new UserError(
          `already enrolled with ${current.brokerUrl}; give --setup-key to enroll with another broker`,
        );
      }
      if (!current.wantUp) {
        current.wantUp = true;
        await this.opts.store.saveEnrollment(current);
      }
    }
    await this.bringUp();
    await waitFor(() => this.control?.connected === true, this.opts.upWaitMs ?? 10_000, 50).catch(
      () => undefined,
    );
    const e = this.enrollment!;
    const who = `${e.name} (${e.address})`;
    if (this.control?.connected) return `up: ${who}, connected to ${e.brokerUrl}`;
    return `up: ${who}, not yet connected to ${e.brokerUrl}: ${this.control?.lastError ?? 'connecting'}`;
  }

  down(): Promise<string> {
    return this.ops.run(() => this.doDown());
  }

  private async doDown(): Promise<string> {
    if (this.enrollment?.wantUp) {
      this.enrollment.wantUp = false;
      await this.opts.store.saveEnrollment(this.enrollment);
    }
    await this.leaveMesh();
    this.state = this.enrollment ? 'stopped' : 'needs-enrollment';
    return 'down: left the mesh (enrollment kept; `trellis up` to rejoin)';
  }

  /** Daemon exit: tear everything down but keep wanting to be up on next start. */
  shutdown(): Promise<void> {
    return this.ops.run(() => this.leaveMesh());
  }

  async status(): Promise<StatusResponse> {
    let device: WgDeviceState | null = null;
    if (this.meshUp) {
      device = await this.queue.run(() => this.opts.backend.getState()).catch(() => null);
    }
    return buildStatus({
      state: this.state,
      self: this.netmap?.self ?? null,
      brokerUrl: this.enrollment?.brokerUrl ?? null,
      brokerConnected: this.control?.connected ?? false,
      lastError: this.control ? this.control.lastError : this.lastError,
      interfaceName: this.opts.interfaceName,
      listenPort: this.opts.listenPort,
      publicKey: this.keyPair?.publicKey ?? null,
      backend: this.opts.backend.kind,
      netmap: this.netmap,
      netmapSource: this.netmapSource,
      device,
      paths: this.paths?.status() ?? [],
      netinfo: {
        reflexive: this.netmap?.self.reflexive ?? [],
        mappingType: this.netmap?.self.mappingType ?? null,
        portMapped: this.portMapped,
        brokerRttMs: this.clock.rttMs,
      },
    });
  }

  private async enroll(broker: string, setupKey: string, name: string | undefined, trust: BrokerTrust) {
    const url = parseBrokerUrl(broker).toString();
    const agent = createBrokerAgent(trust);
    const keys = this.keyPair!;
    const previous = this.state;
    this.state = 'enrolling';
    this.log.info({ broker: url }, 'enrolling');
    try {
      const res = await enroll(url, agent, {
        protocolVersion: PROTOCOL_VERSION,
        setupKey,
        publicKey: keys.publicKey,
        ...(name ? { name } : {}),
        hostname: hostname(),
        os: `linux ${release()}`,
        endpoints: this.opts.readCandidates(),
      });
      await this.leaveMesh(); // a new enrollment replaces whatever mesh we had
      this.enrollment = {
        deviceId: res.deviceId,
        brokerUrl: url,
        brokerPublicKey: res.brokerPublicKey,
        trust,
        publicKey: keys.publicKey,
        name: res.name,
        dnsName: res.dnsName,
        address: res.address,
        accountName: res.accountName,
        overlayPrefix: res.overlayPrefix,
        enrolledAt: new Date().toISOString(),
        wantUp: true,
      };
      await this.opts.store.saveEnrollment(this.enrollment);
      this.lastError = null;
      this.log.info({ deviceId: res.deviceId, name: res.name, address: res.address }, 'enrolled');
    } catch (err) {
      this.state = previous;
      this.lastError = (err as Error).message;
      throw err;
    } finally {
      agent.destroy();
    }
  }

  /** Starts the control connection (and the mesh from disk, which the broker's snapshot then replaces). */
  private async bringUp(): Promise<void> {
    const e = this.enrollment!;
    if (this.control) return;
    this.state = 'connecting';
    // Before the saved netmap is applied: the path logic owns every peer's endpoint.
    this.clock = new ClockOffsetEstimator();
    this.paths = new PathDriver({
      selfPublicKey: this.keyPair!.publicKey,
      backend: this.opts.backend,
      run: (job) => this.queue.run(job),
      allowedIpsOf: (key) => this.allowedIpsOf(key),
      meshUp: () => this.meshUp,
      send: (report) => this.control?.sendPath(report),
      openTcpRelay: (msg, onReconnected) =>
        new RelayTcpProxy({
          tcp: msg.tcp!,
          allocationId: msg.allocationId,
          listenPort: this.opts.listenPort,
          onReconnected,
          logger: this.log.child({ relay: msg.relayName, peerId: msg.peerId }),
        }),
      logger: this.log,
    });
    this.relayProber = new RelayRttProber({
      logger: this.log,
      onRtts: (rtts) => {
        this.relayRtts = rtts;
        this.sendNetinfo();
      },
    });
    this.relayProber.start();
    const saved = await this.opts.store.loadNetmap().catch((err: Error) => {
      this.log.warn({ err: err.message }, 'ignoring unreadable saved netmap');
      return null;
    });
    if (saved && saved.self.id === e.deviceId && !this.netmap) {
      this.netmap = { serial: saved.serial, self: saved.self, peers: saved.peers };
      this.netmapSource = 'disk';
      this.state = 'offline';
      this.log.info({ serial: saved.serial, peers: saved.peers.length }, 'mesh from saved netmap');
      await this.queue.run(() => this.applyMesh('disk')).catch((err: Error) => this.meshError(err));
    }
    const control = new ControlClient({
      brokerUrl: e.brokerUrl,
      agent: createBrokerAgent(e.trust),
      deviceId: e.deviceId,
      keyPair: this.keyPair!,
      brokerPublicKey: e.brokerPublicKey,
      logger: this.log,
      ...(saved ? { lastSerial: saved.serial } : {}),
      ...this.opts.controlOptions,
      handlers: {
        onNetmap: (netmap, kind) => this.onNetmap(netmap, kind),
        onConnected: () => {
          this.state = 'connected';
          this.log.info({ broker: e.brokerUrl }, 'broker connected');
          this.refreshReflectorSessions('reconnected');
        },
        onDisconnected: (reason) => {
          this.state = this.netmap ? 'offline' : 'connecting';
          this.log.warn({ reason }, 'broker disconnected');
        },
        onDeviceRemoved: () => void this.ops.run(() => this.onDeviceRemoved()),
        onClockSample: (sample) => this.clock.addSample(sample),
        onPunch: (msg) => {
          this.log.info(
            { peerId: msg.peerId, attemptId: msg.attemptId, candidates: msg.candidates },
            'punch',
          );
          void this.paths?.punch(msg, this.clock.offsetMs ?? 0);
        },
        onRelay: (msg) => {
          this.log.info(
            { peerId: msg.peerId, relay: msg.relayName, endpoint: msg.endpoint, tcp: msg.tcp !== undefined },
            'relay',
          );
          void this.paths?.relay(msg);
        },
        onRelayRelease: (msg) => {
          this.log.info({ peerId: msg.peerId, allocationId: msg.allocationId }, 'relay released');
          void this.paths?.relayRelease(msg);
        },
      },
    });
    this.control = control;
    this.stopWatching = this.opts.watchCandidates((candidates) => {
      this.log.info({ candidates }, 'local candidates');
      control.setEndpoints(candidates);
      // Moved to another network: a control connection from an address we lost is dead; redo it now.
      const addresses = localAddresses();
      control.networkChanged((a) => addresses.has(a));
      // Our own network changed: rediscover at once (ARCHITECTURE: retry direct on a network change),
      // with the peers' LAN addresses that are on our links now: moved onto a peer's own LAN, its
      // LAN address is the only way to it when the router does not hairpin.
      void this.paths?.networkChanged(this.netmap ? this.pathPeers(this.netmap.peers) : undefined);
      void this.relayProber?.probeNow();
      this.refreshReflectorSessions('network changed');
      this.portMapper?.refresh();
    });
    if (this.opts.portMapping) {
      const mapper = this.opts.portMapping(this.opts.listenPort);
      this.portMapper = mapper;
      mapper.on('candidate', (c) => {
        this.portMapped = c?.endpoint ?? null;
        this.log.info({ portMapped: this.portMapped }, 'port mapping');
        this.sendNetinfo();
      });
      mapper.start();
    }
    control.start();
  }

  private onNetmap(netmap: Netmap, kind: 'snapshot' | 'delta'): void {
    this.netmap = netmap;
    this.netmapSource = 'broker';
    const saved = { ...netmap, savedAt: new Date().toISOString() };
    void this.queue
      .run(async () => {
        if (this.netmap !== netmap) return; // a newer one is queued behind us
        await this.opts.store.saveNetmap(saved);
        await this.applyMesh(kind);
      })
      .catch((err: Error) => this.meshError(err));
  }

  /** Brings WireGuard and the OS to what the current netmap asks for. Runs inside the queue. */
  private async applyMesh(kind: string): Promise<void> {
    const netmap = this.netmap;
    if (!netmap) return; // left the mesh while this job waited
    if (!this.meshUp) {
      await this.opts.backend.start();
      this.meshUp = true;
    }
    this.reflectorEndpoints.setReflectors(netmap.self.reflectors ?? []);
    this.relayProber?.setRelays(netmap.self.relays ?? []);
    const desired = desiredConfigFromNetmap(netmap, this.keyPair!.privateKey, this.opts.listenPort);
    const current = await this.opts.backend.getState();
    const update = diffWireGuardConfig(desired, current, this.selector);
    if (!isEmptyUpdate(update)) await this.opts.backend.apply(update);
    await this.opts.network.apply(this.opts.interfaceName, netmap.self.address, netmap.self.overlayPrefix);
    await this.paths?.setPeersInQueue(this.pathPeers(netmap.peers));
    this.sendNetinfo();
    this.log.info(
      { serial: netmap.serial, source: kind, peers: netmap.peers.length, changes: update.peers.length },
      'mesh applied',
    );
  }

  /**
   * Re-adds the reflector peers, so WireGuard sends each a fresh initiation now: after a reconnect
   * (we may have moved: the broker holds our punches until its reflectors see where we are now) or
   * a local network change, instead of when the 25 s keepalive next goes out. Nothing before the
   * mesh is up: bringing it up adds them, which initiates anyway.
   */
  private refreshReflectorSessions(why: string): void {
    void this.queue
      .run(async () => {
        const reflectors = this.netmap?.self.reflectors ?? [];
        if (!this.meshUp || reflectors.length === 0) return;
        await this.opts.backend.apply({
          // The same remove + re-add a path uses to start a fresh handshake; reflectors route nothing.
          peers: reflectors.flatMap(
            (r) =>
              wgUpdateForEffect(
                { type: 'readd-peer', peerId: r.publicKey, publicKey: r.publicKey, endpoint: r.endpoint },
                [],
              ).peers,
          ),
        });
        this.log.debug({ why, reflectors: reflectors.length }, 'reflector sessions refreshed');
      })
      .catch((err: Error) => this.log.warn({ err: err.message }, 'refreshing reflector sessions failed'));
  }

  /** The path logic's view of the netmap's peers: typed candidates, LAN ones only when on our links. */
  private pathPeers(peers: readonly NetmapPeer[]): PathPeer[] {
    const subnets = localSubnets(this.opts.interfaceName);
    return peers.map((p) => ({
      peerId: p.id,
      publicKey: p.publicKey,
      candidates: p.candidates
        ? onLinkCandidates(p.candidates, subnets)
        : candidatesFromEndpoints(p.endpoints, subnets),
    }));
  }

  private allowedIpsOf(publicKey: string): string[] | null {
    const peer = this.netmap?.peers.find((p) => p.publicKey === publicKey);
    if (!peer) return null;
    return peer.allowedIps.length > 0 ? peer.allowedIps : [`${peer.address}/32`];
  }

  /** Tells the broker what we know of our NAT, when it changed. */
  private sendNetinfo(): void {
    const self = this.netmap?.self;
    const msg: NetinfoMessage = { type: 'netinfo', reflexive: self?.reflexive ?? [] };
    if (self?.mappingType) msg.mappingType = self.mappingType;
    if (this.portMapped) msg.portMapped = this.portMapped;
    if (Object.keys(this.relayRtts).length > 0) msg.relayRttMs = this.relayRtts;
    const key = JSON.stringify(msg);
    if (key === this.lastNetinfo) return;
    this.lastNetinfo = key;
    this.control?.setNetinfo(msg);
  }

  private async leaveMesh(): Promise<void> {
    this.paths?.stop();
    this.paths = null;
    this.relayProber?.stop();
    this.relayProber = null;
    this.relayRtts = {};
    const mapper = this.portMapper;
    this.portMapper = null;
    this.portMapped = null;
    this.lastNetinfo = '';
    await mapper?.stop().catch(() => undefined);
    this.control?.stop();
    this.control = null;
    this.stopWatching?.();
    this.stopWatching = null;
    const prefix = this.netmap?.self.overlayPrefix ?? null;
    this.netmap = null;
    this.netmapSource = 'none';
    await this.queue.run(async () => {
      if (!this.meshUp) return;
      await this.opts.network.remove(this.opts.interfaceName, prefix);
      await this.opts.backend.stop();
      this.meshUp = false;
      this.log.info({ interface: this.opts.interfaceName }, 'mesh removed');
    });
  }

  private async onDeviceRemoved(): Promise<void> {
    this.log.warn('the broker removed this device; leaving the mesh');
    await this.leaveMesh().catch((err: Error) => this.meshError(err));
    await this.opts.store.forgetEnrollment();
    this.enrollment = null;
    this.state = 'needs-enrollment';
    this.lastError = 'device removed by the broker: enroll again with a setup key';
  }

  private meshError(err: Error): void {
    this.lastError = `applying the mesh failed: ${err.message}`;
    this.log.error({ err: err.message }, 'applying the mesh failed');
  }
}
