import type { Candidate, PathReportMessage, PunchMessage } from '@trellis/proto';
import { PathManager, type PeerPathStatus } from '../../src/path';

/**
 * A tiny deterministic model of two WireGuard devices behind NATs, enough to say whether a
 * handshake completes given both sides' endpoint settings and timing. Time is true ms from 0.
 *
 * WireGuard: one handshake state per peer. Sending an initiation makes it `created`; consuming the
 * peer's initiation overwrites that (responds, then zeroes it), so when two initiations cross in
 * flight both responses are dropped. The responder's handshake counts only once the initiator's
 * first data packet (its keepalive) arrives. Without a session it re-sends an initiation every 5 s.
 * A re-add forgets everything and sends a fresh initiation at once. Authenticated packets move the
 * peer's endpoint to their source (roaming).
 *
 * NAT: mapping endpoint-independent (one public port per internal socket) or endpoint-dependent (one
 * per destination: "symmetric"); filtering open (full cone), address-restricted or port-restricted;
 * optional hairpin, a UPnP-style static port mapping, or all outbound UDP dropped.
 *
 * Relay: a public UDP port that binds each side by its handshake initiation (the real relay checks
 * mac1 with the receiver's key; here the sending host stands for that) and forwards whatever comes
 * from one bound address to the other.
 */

export interface NatSpec {
  name: string;
  /** null: the device has a public address (no NAT at all). */
  mapping: 'independent' | 'dependent' | null;
  filtering: 'open' | 'address' | 'port';
  hairpin?: boolean;
  portMapped?: boolean;
  blockUdp?: boolean;
}

export const NATS: Record<string, NatSpec> = {
  fullCone: { name: 'full-cone', mapping: 'independent', filtering: 'open' },
  addressRestricted: { name: 'address-restricted', mapping: 'independent', filtering: 'address' },
  portRestricted: { name: 'port-restricted', mapping: 'independent', filtering: 'port' },
  symmetric: { name: 'symmetric', mapping: 'dependent', filtering: 'port' },
  portMapped: { name: 'port-mapped', mapping: 'dependent', filtering: 'port', portMapped: true },
  udpBlocked: { name: 'udp-blocked', mapping: 'independent', filtering: 'port', blockUdp: true },
  public: { name: 'public', mapping: null, filtering: 'open' },
};

const REFLECTOR = '192.0.2.250:3478';
/** Where a dormant peer without candidates points: packets to it go nowhere (counted in tx). */
const SINK = '127.0.0.1:51820';
export const SIM_RELAY = '192.0.2.200:40001';
/** True time 0 on the wall clock: handshake times are whole seconds of it, as UAPI reports them. */
const EPOCH = 1_700_000_000_000;
const WG_PORT = 51820;
const MAPPED_PORT = 61000;

const hostOf = (ep: string) => ep.slice(0, ep.lastIndexOf(':'));
const portOf = (ep: string) => Number(ep.slice(ep.lastIndexOf(':') + 1));
const isPrivate = (ip: string) => /^(10\.|127\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(ip);

class SimNat {
  private nextPort = 40000;
  private readonly ports = new Map<string, number>();
  private readonly owners = new Map<number, { internal: string; sentTo: Set<string> }>();

  constructor(
    readonly publicIp: string,
    readonly spec: NatSpec,
  ) {}

  /** Source address a packet from `internal` to `dest` leaves with, or null when dropped. */
  outbound(internal: string, dest: string): string | null {
    if (this.spec.blockUdp) return null;
    let port: number;
    if (this.spec.portMapped && portOf(internal) === WG_PORT) {
      port = MAPPED_PORT; // a UPnP mapping is used for outbound traffic of its socket too
    } else {
      const key = this.spec.mapping === 'dependent' ? `${internal}|${dest}` : internal;
      port = this.ports.get(key) ?? this.nextPort++;
      this.ports.set(key, port);
    }
    let owner = this.owners.get(port);
    if (!owner) {
      owner = { internal, sentTo: new Set() };
      this.owners.set(port, owner);
    }
    owner.sentTo.add(dest);
    return `${this.publicIp}:${port}`;
  }

  /** Internal destination of a packet from `src` to our public `port`, or null when filtered. */
  inbound(src: string, port: number): string | null {
    if (this.spec.blockUdp) return null;
    const owner = this.owners.get(port);
    // The static mapping forwards unfiltered (its owner is the WireGuard socket, known once it sent).
    if (this.spec.portMapped && port === MAPPED_PORT) return owner?.internal ?? null;
    if (!owner) return null;
    const ok =
      this.spec.filtering === 'open' ||
      (this.spec.filtering === 'address' && [...owner.sentTo].some((d) => hostOf(d) === hostOf(src))) ||
      (this.spec.filtering === 'port' && owner.sentTo.has(src));
    return ok ? owner.internal : null;
  }
}

interface Site {
  nat: SimNat | null;
  hosts: SimHost[];
}

type Packet =
  | { kind: 'init'; sender: number }
  | { kind: 'resp'; sender: number; receiver: number }
  | { kind: 'data'; receiver: number };

class SimHost {
  readonly wg: SimWireGuard;
  constructor(
    readonly name: string,
    readonly address: string,
    readonly site: Site,
    readonly net: SimNet,
  ) {
    this.wg = new SimWireGuard(this, net);
  }
}

class SimWireGuard {
  endpoint: string | null = null;
  lastHandshake = 0;
  private state: 'none' | 'created' = 'none';
  private createdIdx = 0;
  private responderIdx = 0;
  private sessionIdx = 0;
  private lastInitAt = Number.NEGATIVE_INFINITY;
  initiations = 0;
  /** Byte counters as UAPI reports them: initiation 148, response 92, keepalive 32, data 128. */
  txBytes = 0;
  rxBytes = 0;
  persistentKeepalive = false;
  /** Packets the host has for the peer with no session yet: WireGuard initiates for them. */
  queued = 0;

  constructor(
    private readonly host: SimHost,
    private readonly net: SimNet,
  ) {}

  readd(endpoint: string, now: number): void {
    this.state = 'none';
    this.createdIdx = this.responderIdx = this.sessionIdx = 0;
    this.lastHandshake = 0;
    this.endpoint = endpoint;
    this.txBytes = this.rxBytes = 0;
    this.persistentKeepalive = true;
    this.sendInit(now);
  }

  /** The host sends one packet to the peer: over the session, or queued behind an initiation. */
  sendData(now: number): void {
    if (this.sessionIdx !== 0 && this.endpoint !== null) {
      this.txBytes += 128;
      this.net.send(this.host, this.endpoint, { kind: 'data', receiver: this.peerIdx }, now);
      return;
    }
    this.queued++;
    if (now - this.lastInitAt >= 5000) this.sendInit(now);
  }

  /** Without a session WireGuard re-initiates every 5 s, but only for keepalive or queued packets. */
  timers(now: number): void {
    const wants = this.persistentKeepalive || this.queued > 0;
    if (wants && this.endpoint !== null && this.sessionIdx === 0 && now - this.lastInitAt >= 5000)
      this.sendInit(now);
  }

  private peerIdx = 0;

  private sendInit(now: number): void {
    if (this.endpoint === null) return;
    this.txBytes += 148;
    this.createdIdx = this.net.newIndex();
    this.state = 'created';
    this.lastInitAt = now;
    this.initiations++;
    this.net.send(this.host, this.endpoint, { kind: 'init', sender: this.createdIdx }, now);
  }

  receive(p: Packet, src: string, now: number): void {
    this.rxBytes += p.kind === 'init' ? 148 : p.kind === 'resp' ? 92 : 32;
    switch (p.kind) {
      case 'init':
        // Consuming overwrites our own initiation's state: its response will be dropped.
        this.state = 'none';
        this.endpoint = src;
        this.responderIdx = this.net.newIndex();
        this.peerIdx = p.sender;
        this.txBytes += 92;
        this.net.send(this.host, src, { kind: 'resp', sender: this.responderIdx, receiver: p.sender }, now);
        break;
      case 'resp':
        if (this.state !== 'created' || p.receiver !== this.createdIdx) return;
        this.state = 'none';
        this.sessionIdx = this.createdIdx;
        this.lastHandshake = now;
        this.endpoint = src;
        this.peerIdx = p.sender;
        this.txBytes += 32 + 96 * this.queued; // keepalive confirms (the queued packets go too)
        this.queued = 0;
        this.net.send(this.host, src, { kind: 'data', receiver: p.sender }, now);
        break;
      case 'data':
        if (this.responderIdx !== 0 && p.receiver === this.responderIdx) {
          this.sessionIdx = this.responderIdx;
          this.responderIdx = 0;
          this.lastHandshake = now;
          this.endpoint = src;
        } else if (this.sessionIdx !== 0 && p.receiver === this.sessionIdx) {
          this.endpoint = src;
        }
        break;
    }
  }
}

/** The relay's allocation for the pair: a side is bound by its initiation, then packets are forwarded. */
class SimRelay {
  readonly host: SimHost;
  private readonly bound = new Map<string, string>();
  forwarded = 0;

  constructor(private readonly net: SimNet) {
    const site: Site = { nat: null, hosts: [] };
    this.host = new SimHost('relay', SIM_RELAY, site, net);
    site.hosts.push(this.host);
  }

  receive(p: InFlight, now: number): void {
    if (p.packet.kind === 'init') this.bound.set(p.from.name, p.src);
    const side = [...this.bound].find(([, addr]) => addr === p.src)?.[0];
    const other = [...this.bound].find(([name]) => name !== side)?.[1];
    if (side === undefined || other === undefined) return;
    this.forwarded++;
    this.net.forward(this.host, other, p.packet, now);
  }
}

interface InFlight {
  at: number;
  seq: number;
  from: SimHost;
  /** Source address as it travels (after the sender's NAT). */
  src: string;
  dst: string;
  packet: Packet;
}

/**
 * Packets leave through the sender's NAT when sent (creating its mapping) and pass the receiver's
 * NAT filter when they arrive, so a hole opened while a packet is in flight lets it in.
 */
class SimNet {
  private index = 1;
  private seq = 0;
  readonly sites: Site[] = [];
  private readonly queue: InFlight[] = [];
  relay: SimRelay | null = null;

  constructor(
    private readonly wanOneWayMs: number,
    private readonly lanOneWayMs = 1,
    readonly trace: ((line: string) => void) | null = null,
  ) {}

  newIndex(): number {
    return this.index++;
  }

  send(from: SimHost, dst: string, packet: Packet, now: number): void {
    const out = this.leave(from, dst);
    this.trace?.(
      `${now} ${from.name} ${packet.kind} -> ${dst} ${out ? `from ${out.src}` : 'DROPPED leaving'}`,
    );
    if (out) this.queue.push({ at: now + out.latency, seq: this.seq++, from, src: out.src, dst, packet });
  }

  /** A packet the relay sends from its public address (no NAT on its side). */
  forward(relay: SimHost, dst: string, packet: Packet, now: number): void {
    this.trace?.(`${now} relay ${packet.kind} -> ${dst}`);
    this.queue.push({
      at: now + this.wanOneWayMs,
      seq: this.seq++,
      from: relay,
      src: relay.address,
      dst,
      packet,
    });
  }

  private leave(from: SimHost, dst: string): { src: string; latency: number } | null {
    const local = from.site.hosts.find((h) => h.address === dst && h !== from);
    if (local && from.site.nat) return { src: from.address, latency: this.lanOneWayMs };
    if (isPrivate(hostOf(dst))) return null; // another site's private address: unroutable
    const src = from.site.nat ? from.site.nat.outbound(from.address, dst) : from.address;
    if (src === null) return null;
    const sameSite = from.site.nat?.publicIp === hostOf(dst);
    return { src, latency: sameSite ? this.lanOneWayMs : this.wanOneWayMs };
  }

  private arrive(p: InFlight): SimHost | null {
    const local = p.from.site.hosts.find((h) => h.address === p.dst && h !== p.from);
    if (local && p.from.site.nat) return local;
    for (const site of this.sites) {
      if (site.nat?.publicIp === hostOf(p.dst)) {
        if (site === p.from.site && !site.nat.spec.hairpin) return null;
        const internal = site.nat.inbound(p.src, portOf(p.dst));
        return site.hosts.find((h) => h.address === internal) ?? null;
      }
      if (!site.nat) {
        const to = site.hosts.find((h) => h.address === p.dst);
        if (to) return to;
      }
    }
    return null;
  }

  /** Delivers everything due by `now`, in send order. */
  deliver(now: number): void {
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.queue[0];
      if (!next || next.at > now) return;
      this.queue.shift();
      if (next.dst === this.relay?.host.address) {
        this.relay.receive(next, now);
        continue;
      }
      const to = this.arrive(next);
      if (!to) {
        this.trace?.(`${now} ${next.packet.kind} from ${next.src} to ${next.dst} FILTERED`);
        continue;
      }
      to.wg.receive(next.packet, next.src, now);
      this.trace?.(
        `${now} ${to.name} got ${next.packet.kind}: hs=${to.wg.lastHandshake} ep=${to.wg.endpoint}`,
      );
    }
  }
}

/** A device's agent: the PathManager, its clock skew, and the effect loop the real agent will run. */
class SimAgent {
  readonly mgr: PathManager;
  readonly reports: Array<PathReportMessage & { at: number }> = [];
  /** True times of `want-path` sends. */
  readonly wants: number[] = [];
  private wakeAt: number | null = null;

  constructor(
    readonly host: SimHost,
    readonly key: string,
    private readonly peerKey: string,
    /** Local clock minus true time. */
    readonly skewMs: number,
  ) {
    this.mgr = new PathManager(key, {}, SINK);
  }

  /** The device's wall clock (ms since the epoch) at true time `now`. */
  local(now: number): number {
    return EPOCH + now + this.skewMs;
  }

  apply(effects: ReturnType<PathManager['tick']>, now: number): void {
    this.wakeAt = null;
    for (const e of effects) {
      if (e.type !== 'schedule-tick')
        this.host.net.trace?.(`${now} ${this.host.name} effect ${JSON.stringify(e)}`);
      if (e.type === 'schedule-tick') this.wakeAt = e.at;
      else if (e.type === 'send') {
        if (e.message.type === 'path') this.reports.push({ ...e.message, at: now });
        else this.wants.push(now);
      } else if (e.type === 'readd-peer') this.host.wg.readd(e.endpoint, now);
      else if (e.type === 'keepalive') this.host.wg.persistentKeepalive = e.on;
      else {
        this.host.wg.endpoint = e.endpoint;
        this.host.wg.persistentKeepalive = e.keepalive;
      }
    }
  }

  relay(peerId: string, now: number): void {
    const relay = {
      allocationId: '5e5e5e5e-0000-4000-8000-000000000001',
      relayId: '5e5e5e5e-0000-4000-8000-000000000002',
      relayName: 'sim-relay',
      endpoint: SIM_RELAY,
      wgEndpoint: SIM_RELAY,
    };
    this.apply(this.mgr.setRelay(peerId, this.peerKey, relay, this.local(now)), now);
  }

  poll(now: number): void {
    if (this.wakeAt === null || this.wakeAt > this.local(now)) return;
    const wg = this.host.wg;
    // UAPI reports the handshake in whole seconds of the local wall clock.
    const hs = wg.lastHandshake === 0 ? 0 : Math.floor(this.local(wg.lastHandshake) / 1000) * 1000;
    const row = {
      publicKey: this.peerKey,
      lastHandshakeMs: hs,
      endpoint: wg.endpoint,
      txBytes: wg.txBytes,
      rxBytes: wg.rxBytes,
    };
    this.host.net.trace?.(`${now} ${this.host.name} poll ${JSON.stringify(row)} ${this.status()?.phase}`);
    this.apply(this.mgr.observe([row], this.local(now)), now);
    this.apply(this.mgr.tick(this.local(now)), now);
  }

  status(): PeerPathStatus {
    return this.mgr.status()[0]!;
  }
}

export interface PairOptions {
  wanOneWayMs?: number;
  /** Both devices behind the same NAT (one site). */
  sameSite?: boolean;
  skewA?: number;
  skewB?: number;
  /** Error of each side's clock-offset estimate (ms). */
  offsetErrorA?: number;
  offsetErrorB?: number;
  ctrlLatencyA?: number;
  ctrlLatencyB?: number;
  deadlineMs?: number;
  runMs?: number;
  /** Hand out LAN candidates to peers at other sites too (unreachable: each costs its deadline). */
  lanCandidatesAlways?: boolean;
  /** True time at which the broker's `relay` reaches both sides (each after its control latency). */
  relayAtMs?: number;
  /**
   * Paths on demand: both agents get the other's candidates at 0 (dormant, no punch), A's host sends
   * a packet to B at this true time, and the broker punches both sides when A's `want-path` arrives
   * (start: its control round trips + 25 ms ahead). bothDirectAfterMs counts from this time.
   */
  demandAtMs?: number;
  /** True times at which A's own network changes (it retries direct at once). */
  networkChangesA?: number[];
  trace?: (line: string) => void;
}

export interface PairResult {
  a: PeerPathStatus;
  b: PeerPathStatus;
  reportsA: PathReportMessage[];
  reportsB: PathReportMessage[];
  /** True ms from the punch's start until both sides have a handshake; null if never. */
  bothDirectAfterMs: number | null;
  /** True ms from relayAtMs until both sides report the relay path; null if never. */
  bothRelayAfterMs: number | null;
  /** Reports with the true time they were sent at. */
  timedReportsA: Array<PathReportMessage & { at: number }>;
  timedReportsB: Array<PathReportMessage & { at: number }>;
  /** Packets the relay forwarded. */
  relayed: number;
  /** True times of each side's `want-path` sends. */
  wantsA: number[];
  wantsB: number[];
  /** Each side's WireGuard persistent keepalive at the end. */
  keepaliveA: boolean;
  keepaliveB: boolean;
}

const KEY_A = `A${'A'.repeat(42)}=`;
const KEY_B = `B${'A'.repeat(42)}=`;
const ID_A = '0a0a0a0a-0000-4000-8000-00000000000a';
const ID_B = '0b0b0b0b-0000-4000-8000-00000000000b';

/**
 * The candidates a broker would hand `to` about `h`: LAN (only when both share a public address, i.e.
 * sit behind the same NAT: elsewhere a private address is unreachable and would cost its deadline),
 * port mapping, reflexive (as the reflector saw it).
 */
function candidatesOf(h: SimHost, to: SimHost, lanAlways: boolean): Candidate[] {
  const out: Candidate[] = [];
  const nat = h.site.nat;
  if (!nat) return [{ endpoint: h.address, kind: 'reflexive', priority: 100 }];
  if (lanAlways || to.site.nat?.publicIp === nat.publicIp)
    out.push({ endpoint: h.address, kind: 'lan', priority: 300 });
  if (nat.spec.portMapped)
    out.push({ endpoint: `${nat.publicIp}:${MAPPED_PORT}`, kind: 'portmapped', priority: 200 });
  const reflexive = nat.outbound(h.address, REFLECTOR);
  if (reflexive) out.push({ endpoint: reflexive, kind: 'reflexive', priority: 100 });
  return out;
}

/**
 * As the broker decides (apps/broker punch-part leaderOf): behind a symmetric NAT facing one that is
 * not, a side leads (only its packets can open the way); otherwise key order (no `leader` field).
 */
function leaderOf(self: SimHost, peer: SimHost): { leader?: boolean } {
  const sym = (h: SimHost) => h.site.nat?.spec.mapping === 'dependent' && !h.site.nat.spec.portMapped;
  if (sym(self) === sym(peer)) return {};
  return { leader: sym(self) };
}

/** Two devices, one punch from the broker at true time 0 with start +300 ms; runs `runMs`. */
export function runPair(specA: NatSpec, specB: NatSpec, o: PairOptions = {}): PairResult {
  const net = new SimNet(o.wanOneWayMs ?? 15, 1, o.trace ?? null);
  if (o.relayAtMs !== undefined) net.relay = new SimRelay(net);
  const siteOf = (spec: NatSpec, publicIp: string): Site => ({
    nat: spec.mapping === null ? null : new SimNat(publicIp, spec),
    hosts: [],
  });
  const siteA = siteOf(specA, '203.0.113.1');
  const siteB = o.sameSite ? siteA : siteOf(specB, '198.51.100.2');
  net.sites.push(siteA);
  if (siteB !== siteA) net.sites.push(siteB);
  const hostA = new SimHost('a', siteA.nat ? '192.168.1.10:51820' : '192.0.2.10:51820', siteA, net);
  const hostB = new SimHost(
    'b',
    o.sameSite ? '192.168.1.11:51820' : siteB.nat ? '10.0.2.20:51820' : '192.0.2.20:51820',
    siteB,
    net,
  );
  siteA.hosts.push(hostA);
  siteB.hosts.push(hostB);
  const a = new SimAgent(hostA, KEY_A, KEY_B, o.skewA ?? 0);
  const b = new SimAgent(hostB, KEY_B, KEY_A, o.skewB ?? 0);

  const demandAt = o.demandAtMs;
  let startAt = EPOCH + 300; // the broker's clock is the true one
  const deadlineMs = o.deadlineMs ?? 1000;
  const punchFor = (
    peer: SimHost,
    to: SimHost,
    peerId: string,
    peerKey: string,
    attemptId: string,
  ): PunchMessage => ({
    type: 'punch',
    attemptId,
    peerId,
    peerPublicKey: peerKey,
    candidates: candidatesOf(peer, to, o.lanCandidatesAlways ?? false),
    startAt,
    deadlineMs,
    ...leaderOf(to, peer),
  });
  let toA = punchFor(hostB, hostA, ID_B, KEY_B, 'pair-1');
  let toB = punchFor(hostA, hostB, ID_A, KEY_A, 'pair-1');
  const ctrlA = o.ctrlLatencyA ?? 20;
  const ctrlB = o.ctrlLatencyB ?? 35;
  /** True time the punches reach A and B (the broker's reaction to a want, or at once). */
  let punchAtA: number | null = demandAt === undefined ? ctrlA : null;
  let punchAtB: number | null = demandAt === undefined ? ctrlB : null;
  if (demandAt !== undefined) {
    a.apply(a.mgr.setPeers([{ peerId: ID_B, publicKey: KEY_B, candidates: toA.candidates }], a.local(0)), 0);
    b.apply(b.mgr.setPeers([{ peerId: ID_A, publicKey: KEY_A, candidates: toB.candidates }], b.local(0)), 0);
  }
  // broker - local = -skew, as the ClockOffsetEstimator would find it (plus its error).
  const offsetA = -(o.skewA ?? 0) + (o.offsetErrorA ?? 0);
  const offsetB = -(o.skewB ?? 0) + (o.offsetErrorB ?? 0);

  let bothDirectAt: number | null = null;
  let bothRelayAt: number | null = null;
  const runMs = o.runMs ?? 4000;
  for (let now = 0; now <= runMs; now++) {
    if (now === demandAt) hostA.wg.sendData(now);
    if (punchAtA === null && a.wants.length > 0) {
      // The broker gets A's want, and punches both sides a little ahead.
      const at = a.wants[0]! + ctrlA;
      startAt = EPOCH + at + 2 * Math.max(ctrlA, ctrlB) + 25;
      toA = { ...toA, startAt };
      toB = { ...toB, startAt };
      punchAtA = at + ctrlA;
      punchAtB = at + ctrlB;
    }
    if (now === punchAtA) a.apply(a.mgr.punch(toA, offsetA, a.local(now)), now);
    if (now === punchAtB) b.apply(b.mgr.punch(toB, offsetB, b.local(now)), now);
    if (o.relayAtMs !== undefined && now === o.relayAtMs + ctrlA) a.relay(ID_B, now);
    if (o.relayAtMs !== undefined && now === o.relayAtMs + ctrlB) b.relay(ID_A, now);
    if (o.networkChangesA?.includes(now)) a.apply(a.mgr.networkChanged(a.local(now)), now);
    net.deliver(now);
    hostA.wg.timers(now);
    hostB.wg.timers(now);
    a.poll(now);
    b.poll(now);
    const direct = (x: SimAgent) => x.status()?.path.startsWith('direct') === true;
    if (bothDirectAt === null && direct(a) && direct(b) && now > (demandAt ?? ctrlB)) {
      bothDirectAt = now;
    }
    if (bothRelayAt === null && a.status()?.path === 'relay' && b.status()?.path === 'relay') {
      bothRelayAt = now;
    }
  }
  return {
    a: a.status(),
    b: b.status(),
    reportsA: a.reports.map(({ at: _at, ...r }) => r),
    reportsB: b.reports.map(({ at: _at, ...r }) => r),
    bothDirectAfterMs: bothDirectAt === null ? null : bothDirectAt - (demandAt ?? startAt - EPOCH),
    bothRelayAfterMs: bothRelayAt === null || o.relayAtMs === undefined ? null : bothRelayAt - o.relayAtMs,
    timedReportsA: a.reports,
    timedReportsB: b.reports,
    relayed: net.relay?.forwarded ?? 0,
    wantsA: a.wants,
    wantsB: b.wants,
    keepaliveA: hostA.wg.persistentKeepalive,
    keepaliveB: hostB.wg.persistentKeepalive,
  };
}
