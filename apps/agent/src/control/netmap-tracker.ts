import type {
  AccessRules,
  DeltaMessage,
  NetmapMessage,
  NetmapPeer,
  NetmapSelf,
  NetmapVirtual,
  PeerAccess,
  RouteAccess,
} from '@trellis/proto';

/** What the policy opens between this device and one peer. */
export interface PeerRules {
  /** What the peer may open on this device: what the firewall lets in. */
  in: AccessRules;
  /** What this device may open on the peer (the peer's firewall enforces it). */
  out: AccessRules;
  /** What this device may reach through the peer's routes (absent: nothing). */
  routesOut?: RouteAccess[];
  /** What the peer may reach through this device's routes (absent: nothing). */
  routesIn?: RouteAccess[];
}

export interface Netmap {
  serial: number;
  self: NetmapSelf;
  peers: NetmapPeer[];
  /** By peer id (a virtual device's too); a peer without an entry may open nothing here. */
  access: ReadonlyMap<string, PeerRules>;
  /** Virtual devices this device may see, each behind its gateway `via` (planVirtual checks them). */
  virtual: NetmapVirtual[];
}

export type DeltaResult = { ok: true; netmap: Netmap } | { ok: false; reason: string };

const NOTHING: PeerRules = { in: [], out: [] };

/** The access of each peer, from the grouped form the broker sends. */
export function accessFromWire(groups: readonly PeerAccess[]): Map<string, PeerRules> {
  const access = new Map<string, PeerRules>();
  for (const g of groups) {
    const rules: PeerRules = {
      in: g.in,
      out: g.out,
      ...(g.routesOut ? { routesOut: g.routesOut } : {}),
      ...(g.routesIn ? { routesIn: g.routesIn } : {}),
    };
    for (const id of g.peers) access.set(id, rules);
  }
  return access;
}

/** The grouped form, for saving: peers with the same rules share one entry. */
export function accessToWire(access: ReadonlyMap<string, PeerRules>): PeerAccess[] {
  const groups = new Map<PeerRules, string[]>();
  for (const [id, rules] of access) {
    const list = groups.get(rules);
    if (list) list.push(id);
    else groups.set(rules, [id]);
  }
  return [...groups].map(([rules, peers]) => ({ peers, ...rules }));
}

export function rulesOf(netmap: Netmap, peerId: string): PeerRules {
  return netmap.access.get(peerId) ?? NOTHING;
}

/**
 * Holds the current netmap: a snapshot replaces it, a delta must carry exactly the next serial (or
 * name the serial it applies to: a resumed connection's first delta). It also keeps the broker's
 * resume token for that netmap, which only a frame carrying one renews.
 */
export class NetmapTracker {
  private serial: number | null = null;
  private resume: string | null = null;
  private self: NetmapSelf | null = null;
  private readonly peers = new Map<string, NetmapPeer>();
  private readonly virtual = new Map<string, NetmapVirtual>();
  private access = new Map<string, PeerRules>();

  applySnapshot(msg: NetmapMessage): Netmap {
    this.serial = msg.serial;
    this.resume = msg.resume ?? null;
    this.self = msg.self;
    this.peers.clear();
    for (const p of msg.peers) this.peers.set(p.id, p);
    this.virtual.clear();
    for (const v of msg.virtual ?? []) this.virtual.set(v.id, v);
    this.access = accessFromWire(msg.access);
    return this.current()!;
  }

  applyDelta(msg: DeltaMessage): DeltaResult {
    if (this.serial === null || this.self === null) return { ok: false, reason: 'delta before snapshot' };
    const base = msg.base ?? msg.serial - 1;
    if (base !== this.serial || msg.serial <= base) {
      this.resume = null;
      return { ok: false, reason: `serial gap: have ${this.serial}, got ${msg.serial} on ${base}` };
    }
    for (const id of msg.remove) {
      this.peers.delete(id);
      this.virtual.delete(id);
      this.access.delete(id);
    }
    for (const p of msg.upsert) this.peers.set(p.id, p);
    for (const v of msg.virtualUpsert ?? []) this.virtual.set(v.id, v);
    this.setOnline(msg.online, true);
    this.setOnline(msg.offline, false);
    for (const [id, rules] of accessFromWire(msg.access ?? [])) this.access.set(id, rules);
    if (msg.self) this.self = msg.self;
    this.serial = msg.serial;
    this.resume = msg.resume ?? null;
    return { ok: true, netmap: this.current()! };
  }

  /** A presence list (capability 3): the peers it names, otherwise unchanged. */
  private setOnline(ids: readonly string[] | undefined, online: boolean): void {
    for (const id of ids ?? []) {
      const p = this.peers.get(id);
      if (p && p.online !== online) this.peers.set(id, { ...p, online });
    }
  }

  current(): Netmap | null {
    if (this.serial === null || this.self === null) return null;
    return {
      serial: this.serial,
      self: this.self,
      peers: [...this.peers.values()],
      access: new Map(this.access),
      virtual: [...this.virtual.values()],
    };
  }

  get lastSerial(): number | null {
    return this.serial;
  }

  /** The broker's token for resuming from the netmap held (null: ask for a snapshot). */
  get resumeToken(): string | null {
    return this.serial === null ? null : this.resume;
  }

  /** The next connection asks for a snapshot (a broker that may not know tokens refused the hello). */
  forgetResume(): void {
    this.resume = null;
  }
}
