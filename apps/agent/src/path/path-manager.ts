import type { Candidate, PunchMessage } from '@trellis/proto';
import { hostOf } from './candidates';
import { DEFAULT_PATH_TIMINGS, type PathEffect, type PathTimings, type PeerPathStatus } from './path-types';
import { PeerPathMachine } from './peer-path-machine';
import type { RelayPath } from './relay-leg';

/** One netmap peer as the path logic needs it. */
export interface PathPeer {
  peerId: string;
  publicKey: string;
  candidates: Candidate[];
}

/** One peer's row of WireGuard state, as read through UAPI. */
export interface HandshakeObservation {
  publicKey: string;
  /** Latest handshake, local ms since the epoch; 0 when none. */
  lastHandshakeMs: number;
  endpoint: string | null;
  /**
   * WireGuard's byte counters for the peer (UDP payload, handshakes and keepalives included): growth
   * without a handshake is demand on a dormant peer; no growth beyond keepalives idles a used path.
   */
  txBytes: number;
  rxBytes: number;
}

/**
 * The paths to every peer, sans IO. Every method takes the local time and returns effects to carry
 * out in order; the last effect is always a `schedule-tick` (or none when nothing needs a wake-up).
 * At that time the caller reads WireGuard's peers, passes them to `observe`, then calls `tick`.
 */
export class PathManager {
  private readonly peers = new Map<string, PeerPathMachine>();
  private readonly t: PathTimings;
  private relayHosts = new Set<string>();

  constructor(
    /** This device's WireGuard public key: decides which side of a pair retries first. */
    private readonly selfPublicKey: string,
    timings: Partial<PathTimings> = {},
    /** Where a dormant peer without candidates sends (see PeerPathMachine); null: nowhere. */
    private readonly demandSink: string | null = null,
  ) {
    this.t = { ...DEFAULT_PATH_TIMINGS, ...timings };
  }

  /** The full peer list from the netmap: new peers start, gone ones are dropped, changed candidates roam. */
  setPeers(peers: readonly PathPeer[], now: number): PathEffect[] {
    const effects: PathEffect[] = [];
    const wanted = new Set(peers.map((p) => p.peerId));
    for (const id of [...this.peers.keys()]) if (!wanted.has(id)) this.peers.delete(id);
    for (const p of peers)
      effects.push(...this.machineFor(p.peerId, p.publicKey, now).setCandidates(p.candidates, now));
    return this.finish(effects, now);
  }

  /**
   * The hosts of the netmap's relays: WireGuard at one of them (not at a peer's candidate) is on a
   * relay allocation, even one this agent holds no `relay` message for.
   */
  setRelayHosts(hosts: readonly string[]): void {
    this.relayHosts = new Set(hosts.map((h) => hostOf(`${h}:0`))); // bare, as hostOf gives endpoints' hosts
  }

  /** The peer left the netmap: forget it, whatever it was doing. */
  removePeer(peerId: string, now: number): PathEffect[] {
    this.peers.delete(peerId);
    return this.finish([], now);
  }

  /**
   * A punch from the broker. `clockOffsetMs` is broker clock minus local clock (ClockOffsetEstimator),
   * 0 when unknown. A peer not yet in the netmap is created from the punch.
   */
  punch(msg: PunchMessage, clockOffsetMs: number, now: number): PathEffect[] {
    const machine = this.machineFor(msg.peerId, msg.peerPublicKey, now);
    return this.finish(machine.punch(msg, msg.startAt - clockOffsetMs, now), now);
  }

  /** Whether `peerId` is a peer we know, with that key (relay messages for anyone else are ignored). */
  hasPeer(peerId: string, publicKey: string): boolean {
    return this.peers.get(peerId)?.publicKey === publicKey;
  }

  /** A relay allocation for a known peer (see hasPeer; others are ignored); replaces the previous one. */
  setRelay(peerId: string, publicKey: string, relay: RelayPath, now: number): PathEffect[] {
    const m = this.peers.get(peerId);
    if (!m || m.publicKey !== publicKey) return this.finish([], now);
    return this.finish(m.setRelay(relay, now), now);
  }

  /** The broker released a relay allocation; ignored unless it is the peer's current one. */
  releaseRelay(peerId: string, allocationId: string, now: number): PathEffect[] {
    return this.finish(this.peers.get(peerId)?.releaseRelay(allocationId, now) ?? [], now);
  }

  /** A peer's TCP link to its relay (at `wgEndpoint`) reconnected: see PeerPathMachine.relayLinkReconnected. */
  relayLinkReconnected(peerId: string, wgEndpoint: string, now: number): PathEffect[] {
    return this.finish(this.peers.get(peerId)?.relayLinkReconnected(wgEndpoint, now) ?? [], now);
  }

  /** The relay allocation each peer holds now (peer id → relay). */
  relays(): Map<string, RelayPath> {
    const out = new Map<string, RelayPath>();
    for (const [id, m] of this.peers) {
      const r = m.relayPath();
      if (r) out.set(id, r);
    }
    return out;
  }

  /** WireGuard's current peers; call before `tick` on every wake-up. Unknown keys are ignored. */
  observe(rows: readonly HandshakeObservation[], now: number): PathEffect[] {
    const byKey = new Map([...this.peers.values()].map((m) => [m.publicKey, m]));
    const effects: PathEffect[] = [];
    for (const row of rows) {
      const m = byKey.get(row.publicKey);
      if (m)
        effects.push(...m.observeHandshake(row.lastHandshakeMs, row.endpoint, now, row.txBytes, row.rxBytes));
    }
    return this.finish(effects, now);
  }

  tick(now: number): PathEffect[] {
    const effects: PathEffect[] = [];
    for (const m of this.peers.values()) effects.push(...m.tick(now));
    return this.finish(effects, now);
  }

  /**
   * An address or route of this device changed: retry at once whatever is not being punched now.
   * `peers` are the netmap's peers as seen from the new network (which LAN addresses are on our
   * links changed with it); the candidates of peers not listed stay as they were.
   */
  networkChanged(now: number, peers: readonly PathPeer[] = []): PathEffect[] {
    const candidates = new Map(peers.map((p) => [p.peerId, p]));
    const effects: PathEffect[] = [];
    for (const m of this.peers.values()) {
      const p = candidates.get(m.peerId);
      effects.push(...m.networkChanged(now, p?.publicKey === m.publicKey ? p.candidates : undefined));
    }
    return this.finish(effects, now);
  }

  /**
   * The control connection came up: `want-path` with `relayed` for every peer on a confirmed relay.
   * A restarted broker knows no pair, and a relayed pair has no demand to signal (its relay works):
   * this takes it up again, claiming the allocation the relay still holds, before it lapses.
   */
  controlConnected(): PathEffect[] {
    const effects: PathEffect[] = [];
    for (const m of this.peers.values())
      if (m.status().path === 'relay')
        effects.push({ type: 'send', message: { type: 'want-path', peerId: m.peerId, relayed: true } });
    return effects;
  }

  status(): PeerPathStatus[] {
    return [...this.peers.values()].map((m) => m.status());
  }

  statusOf(peerId: string): PeerPathStatus | null {
    return this.peers.get(peerId)?.status() ?? null;
  }

  nextWakeAt(now: number): number | null {
    let at: number | null = null;
    for (const m of this.peers.values()) {
      const w = m.nextWakeAt(now);
      if (w !== null && (at === null || w < at)) at = w;
    }
    return at;
  }

  private machineFor(peerId: string, publicKey: string, now: number): PeerPathMachine {
    const have = this.peers.get(peerId);
    if (have && have.publicKey === publicKey) return have;
    // New peer, or a re-enrolled one with a new key: start from scratch.
    const leads = this.selfPublicKey < publicKey;
    const isRelayHost = (h: string) => this.relayHosts.has(h);
    const m = new PeerPathMachine(peerId, publicKey, leads, this.t, now, isRelayHost, this.demandSink);
    this.peers.set(peerId, m);
    return m;
  }

  private finish(effects: PathEffect[], now: number): PathEffect[] {
    const at = this.nextWakeAt(now);
    if (at !== null) effects.push({ type: 'schedule-tick', at: Math.max(at, now) });
    return effects;
  }
}
