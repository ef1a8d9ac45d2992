import type { DeltaMessage, NetmapMessage, NetmapPeer, NetmapSelf } from '@trellis/proto';

export interface Netmap {
  serial: number;
  self: NetmapSelf;
  peers: NetmapPeer[];
}

export type DeltaResult = { ok: true; netmap: Netmap } | { ok: false; reason: string };

/** Holds the current netmap: a snapshot replaces it, a delta must carry exactly the next serial. */
export class NetmapTracker {
  private serial: number | null = null;
  private self: NetmapSelf | null = null;
  private readonly peers = new Map<string, NetmapPeer>();

  applySnapshot(msg: NetmapMessage): Netmap {
    this.serial = msg.serial;
    this.self = msg.self;
    this.peers.clear();
    for (const p of msg.peers) this.peers.set(p.id, p);
    return this.current()!;
  }

  applyDelta(msg: DeltaMessage): DeltaResult {
    if (this.serial === null || this.self === null) return { ok: false, reason: 'delta before snapshot' };
    if (msg.serial !== this.serial + 1) {
      return { ok: false, reason: `serial gap: have ${this.serial}, got ${msg.serial}` };
    }
    for (const id of msg.remove) this.peers.delete(id);
    for (const p of msg.upsert) this.peers.set(p.id, p);
    if (msg.self) this.self = msg.self;
    this.serial = msg.serial;
    return { ok: true, netmap: this.current()! };
  }

  current(): Netmap | null {
    if (this.serial === null || this.self === null) return null;
    return { serial: this.serial, self: this.self, peers: [...this.peers.values()] };
  }

  get lastSerial(): number | null {
    return this.serial;
  }
}
