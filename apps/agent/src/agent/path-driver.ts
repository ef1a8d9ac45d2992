import type {
  PathReportMessage,
  PathWantMessage,
  PunchMessage,
  RelayPathMessage,
  RelayReleaseMessage,
} from '@trellis/proto';
import type { Logger } from 'pino';
import {
  type KeepaliveSetting,
  observationsFromDevice,
  type PathEffect,
  PathManager,
  type PathPeer,
  type PeerPathStatus,
  type RelayPath,
  wgUpdateForEffect,
} from '../path';
import type { WireGuardBackend } from '../wireguard/backend';
import { isEmptyUpdate, type WgDeviceState } from '../wireguard/types';

/** A TCP-fallback link to a relay (RelayTcpProxy): `start` resolves to WireGuard's loopback endpoint. */
export interface TcpRelayLink {
  start(): Promise<string>;
  close(): void;
}

interface OpenLink {
  peerId: string;
  /** Allocation, URL and pin: a `relay` with the same key reuses the link. */
  key: string;
  endpoint: string;
  link: TcpRelayLink;
}

export interface PathDriverDeps {
  selfPublicKey: string;
  backend: WireGuardBackend;
  /**
   * WireGuard's port: a dormant peer with no candidate points at it on loopback (its packets are
   * dropped there, mac1 fails, but tx counts them: demand is seen). Absent: such peers get no endpoint.
   */
  listenPort?: number;
  /** Runs a job in the agent's mesh queue, so endpoint changes never interleave with a config diff. */
  run(job: () => Promise<void>): Promise<void>;
  /** The netmap's allowed IPs for a peer key; null when WireGuard does not have the peer (yet). */
  allowedIpsOf(publicKey: string): string[] | null;
  /** A peer's persistent keepalive while its path wants it and while not (default 25 and 0). */
  keepaliveOf?(publicKey: string): KeepaliveSetting;
  /** Whether WireGuard is up (no UAPI reads before the interface exists). */
  meshUp(): boolean;
  send(message: PathReportMessage | PathWantMessage): void;
  /**
   * Opens the TCP fallback for a `relay` message with `tcp`; without it such messages are ignored.
   * The link calls `onReconnected` each time it connects again after losing its connection.
   */
  openTcpRelay?(msg: RelayPathMessage, onReconnected: () => void): TcpRelayLink;
  logger: Logger;
  now?: () => number;
  /** After each step of the path logic: a peer's path may have changed (PathStateReporter.changed). */
  onStep?: () => void;
}

/**
 * The IO around the sans-IO PathManager: carries out its effects (UAPI changes, reports), keeps one
 * timer for its next wake-up, and on every wake-up feeds it WireGuard's handshakes, then ticks it.
 */
export class PathDriver {
  private readonly manager: PathManager;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private wakeAt: number | null = null;
  private stopped = false;
  private links: OpenLink[] = [];

  constructor(private readonly deps: PathDriverDeps) {
    const sink = deps.listenPort === undefined ? null : `127.0.0.1:${deps.listenPort}`;
    this.manager = new PathManager(deps.selfPublicKey, {}, sink);
    this.now = deps.now ?? Date.now;
  }

  /** The netmap's peers; call from inside the mesh queue, right after WireGuard got the netmap. */
  setPeersInQueue(peers: PathPeer[]): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.execute(this.manager.setPeers(peers, this.now())).finally(() => this.closeUnusedLinks());
  }

  /** The netmap's relay hosts: WireGuard on one of them is never a direct path (PathManager.setRelayHosts). */
  setRelayHosts(hosts: readonly string[]): void {
    this.manager.setRelayHosts(hosts);
  }

  /**
   * A UAPI read made for `trellis status`: the path logic sees it too, so the path it reports
   * matches the endpoint shown (WireGuard may have roamed since the last wake-up). Inside the queue.
   */
  async observeInQueue(state: WgDeviceState): Promise<void> {
    if (this.stopped) return;
    await this.execute(this.manager.observe(observationsFromDevice(state), this.now())).catch((err: Error) =>
      this.deps.logger.warn({ err: err.message }, 'path step failed'),
    );
  }

  /** A relay allocation for a peer; ignored for a peer the netmap does not have (or another key). */
  relay(msg: RelayPathMessage): Promise<void> {
    return this.deps
      .run(async () => {
        if (this.stopped) return;
        if (!this.manager.hasPeer(msg.peerId, msg.peerPublicKey)) {
          this.deps.logger.info({ peerId: msg.peerId }, 'relay for an unknown peer ignored');
          return;
        }
        const wgEndpoint = msg.tcp ? await this.tcpEndpoint(msg) : msg.endpoint;
        if (wgEndpoint === null) return;
        const relay: RelayPath = {
          allocationId: msg.allocationId,
          relayId: msg.relayId,
          relayName: msg.relayName,
          endpoint: msg.endpoint,
          wgEndpoint,
        };
        this.deps.logger.info({ peerId: msg.peerId, relay: msg.relayName, wgEndpoint }, 'relay path offered');
        try {
          await this.execute(this.manager.setRelay(msg.peerId, msg.peerPublicKey, relay, this.now()));
        } finally {
          this.closeUnusedLinks();
        }
      })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'relay step failed'));
  }

  relayRelease(msg: RelayReleaseMessage): Promise<void> {
    return this.deps
      .run(async () => {
        if (this.stopped) return;
        try {
          await this.execute(this.manager.releaseRelay(msg.peerId, msg.allocationId, this.now()));
        } finally {
          this.closeUnusedLinks();
        }
      })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'relay release failed'));
  }

  punch(msg: PunchMessage, clockOffsetMs: number): Promise<void> {
    return this.handle((now) => this.manager.punch(msg, clockOffsetMs, now));
  }

  /** Our own network changed; `peers`: the netmap's peers as seen from where we are now. */
  networkChanged(peers?: readonly PathPeer[]): Promise<void> {
    return this.handle((now) => this.manager.networkChanged(now, peers));
  }

  /** The control connection is up (again): re-announce the relayed peers (PathManager.controlConnected). */
  controlConnected(): Promise<void> {
    return this.handle(() => this.manager.controlConnected());
  }

  status(): PeerPathStatus[] {
    return this.manager.status();
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.links) l.link.close();
    this.links = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private handle(step: (now: number) => PathEffect[]): Promise<void> {
    return this.deps
      .run(async () => {
        if (this.stopped) return;
        await this.execute(step(this.now()));
      })
      .catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'path step failed'));
  }

  /** The loopback endpoint of the TCP link for this allocation, opened unless one is open already. */
  private async tcpEndpoint(msg: RelayPathMessage): Promise<string | null> {
    const key = `${msg.allocationId} ${msg.tcp!.url} ${msg.tcp!.fingerprint}`;
    const have = this.links.find((l) => l.peerId === msg.peerId && l.key === key);
    if (have) return have.endpoint;
    if (!this.deps.openTcpRelay) {
      this.deps.logger.warn({ peerId: msg.peerId }, 'relay over TCP offered but not supported here');
      return null;
    }
    let opened: OpenLink | null = null;
    const link = this.deps.openTcpRelay(msg, () => {
      if (opened) void this.linkReconnected(opened);
    });
    try {
      const endpoint = await link.start();
      opened = { peerId: msg.peerId, key, endpoint, link };
      this.links.push(opened);
      return endpoint;
    } catch (err) {
      link.close();
      throw err;
    }
  }

  /**
   * A TCP link's new connection (after a relay restart, say) is bound at the relay only by a
   * handshake through it: have the path logic re-add the peer there now, not at WireGuard's next rekey.
   */
  private linkReconnected(l: OpenLink): Promise<void> {
    this.deps.logger.info({ peerId: l.peerId, endpoint: l.endpoint }, 'relay TCP fallback reconnected');
    return this.handle((now) =>
      this.links.includes(l) ? this.manager.relayLinkReconnected(l.peerId, l.endpoint, now) : [],
    );
  }

  /** Closes TCP links no peer's relay path points at any more (released, replaced, peer gone). */
  private closeUnusedLinks(): void {
    const relays = this.manager.relays();
    const keep = (l: OpenLink) => relays.get(l.peerId)?.wgEndpoint === l.endpoint;
    for (const l of this.links.filter((x) => !keep(x))) {
      this.deps.logger.info({ peerId: l.peerId, endpoint: l.endpoint }, 'relay TCP fallback closed');
      l.link.close();
    }
    this.links = this.links.filter(keep);
  }

  /** Wake-up: fresh handshakes first, then the clock. */
  private wake(): Promise<void> {
    return this.deps
      .run(async () => {
        if (this.stopped || !this.deps.meshUp()) return this.reschedule(this.now() + 1000);
        const state = await this.deps.backend.getState();
        await this.execute(this.manager.observe(observationsFromDevice(state), this.now()));
        await this.execute(this.manager.tick(this.now()));
      })
      .catch((err: Error) => {
        this.deps.logger.warn({ err: err.message }, 'path tick failed');
        this.reschedule(this.now() + 1000);
      });
  }

  private async execute(effects: PathEffect[]): Promise<void> {
    try {
      await this.carryOut(effects);
    } finally {
      this.deps.onStep?.();
    }
  }

  private async carryOut(effects: PathEffect[]): Promise<void> {
    for (const e of effects) {
      switch (e.type) {
        case 'set-endpoint':
        case 'keepalive':
        case 'readd-peer': {
          const update = wgUpdateForEffect(
            e,
            this.deps.allowedIpsOf(e.publicKey),
            this.deps.keepaliveOf?.(e.publicKey),
          );
          if (!isEmptyUpdate(update)) await this.deps.backend.apply(update);
          break;
        }
        case 'send':
          if (e.message.type === 'path') this.logReport(e.message);
          else
            this.deps.logger.info(
              { peerId: e.message.peerId, relayed: e.message.relayed ?? false },
              'path wanted',
            );
          this.deps.send(e.message);
          break;
        case 'schedule-tick':
          this.reschedule(e.at);
          break;
      }
    }
  }

  private logReport(m: PathReportMessage): void {
    const fields = { peerId: m.peerId, attemptId: m.attemptId, endpoint: m.endpoint, kind: m.kind };
    this.deps.logger.info({ ...fields, elapsedMs: m.elapsedMs }, `path ${m.result}`);
  }

  /** One timer: the earliest wake-up asked for wins; a later ask replaces it (the manager's contract). */
  private reschedule(at: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.wakeAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.wakeAt = null;
        void this.wake();
      },
      Math.max(0, at - this.now()),
    );
  }

  /** When the driver will next look at WireGuard (local ms), for diagnostics. */
  get nextWakeAt(): number | null {
    return this.wakeAt;
  }
}
