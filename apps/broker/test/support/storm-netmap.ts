/**
 * The netmap one simulated device holds in the reconnection-storm test, kept as an agent keeps it:
 * a snapshot replaces it, a delta applies on top of it. Every rule an agent relies on is checked on
 * each frame and a break is recorded (not thrown: one bad device must not hide the others):
 * - a snapshot's serial is above every serial the device held before (the hello's lastSerial);
 * - a delta follows the netmap held: its base (the resume's `base`, else serial − 1) is the held
 *   serial, and its serial is above it; a delta with a `base` only opens a resumed connection;
 * - the device never finds itself among its peers.
 */

/** What the test compares of a peer: who it is, by which name, and whether it is up. */
export interface HeldPeer {
  name: string;
  online: boolean;
}

/** The fields of a `netmap` or `delta` frame the applier reads (the wire has more). */
export interface NetmapFrame {
  type: 'netmap' | 'delta';
  serial: number;
  base?: number;
  resume?: string;
  peers?: Array<{ id: string; name: string; online: boolean }>;
  upsert?: Array<{ id: string; name: string; online: boolean }>;
  remove?: string[];
  /** Capability 3: peers that only came online / went offline. */
  online?: string[];
  offline?: string[];
}

/** Violations kept per device: the first few say what went wrong. */
const MAX_VIOLATIONS = 5;

export class HeldNetmap {
  readonly peers = new Map<string, HeldPeer>();
  /** Serial of the last frame applied (null: no netmap yet). */
  serial: number | null = null;
  /** The resume token of the last frame (sent back on reconnecting). */
  resume: string | null = null;
  snapshots = 0;
  deltas = 0;
  /** Connections that began with a delta on top of the held netmap. */
  resumed = 0;
  readonly violations: string[] = [];

  constructor(readonly selfId: string) {}

  /** `first`: the first netmap frame on its connection, which asked with `lastSerial` (or null). */
  apply(frame: NetmapFrame, first: boolean, lastSerial: number | null): void {
    if (frame.type === 'netmap') this.applySnapshot(frame, lastSerial);
    else this.applyDelta(frame, first, lastSerial);
    this.resume = frame.resume ?? null;
  }

  private applySnapshot(frame: NetmapFrame, lastSerial: number | null): void {
    const floor = Math.max(this.serial ?? -1, lastSerial ?? -1);
    if (frame.serial <= floor)
      this.violate(`snapshot serial ${frame.serial} not above ${floor} (went backwards)`);
    this.peers.clear();
    for (const p of frame.peers ?? []) this.put(p);
    this.serial = frame.serial;
    this.snapshots++;
  }

  private applyDelta(frame: NetmapFrame, first: boolean, lastSerial: number | null): void {
    if (this.serial === null) {
      this.violate(`delta ${frame.serial} with no netmap held`);
      return;
    }
    if (first) {
      if (frame.base === undefined)
        this.violate(`connection opened with a delta ${frame.serial} without a base`);
      else if (frame.base !== lastSerial)
        this.violate(`resumed on base ${frame.base}, but the hello named ${lastSerial}`);
      this.resumed++;
    }
    const base = frame.base ?? frame.serial - 1;
    if (base !== this.serial)
      this.violate(`stale delta: serial ${frame.serial} on base ${base}, held ${this.serial}`);
    if (frame.serial <= this.serial)
      this.violate(`delta serial ${frame.serial} not above held ${this.serial} (went backwards)`);
    for (const p of frame.upsert ?? []) this.put(p);
    for (const id of frame.remove ?? []) this.peers.delete(id);
    for (const [ids, online] of [
      [frame.online, true],
      [frame.offline, false],
    ] as const) {
      for (const id of ids ?? []) {
        const p = this.peers.get(id);
        if (p) this.peers.set(id, { ...p, online });
        else this.violate(`presence of ${id}, a peer it does not hold`);
      }
    }
    this.serial = frame.serial;
    this.deltas++;
  }

  private put(p: { id: string; name: string; online: boolean }): void {
    if (p.id === this.selfId) this.violate('the device is listed among its own peers');
    else this.peers.set(p.id, { name: p.name, online: p.online });
  }

  private violate(what: string): void {
    if (this.violations.length < MAX_VIOLATIONS) this.violations.push(what);
  }
}

/**
 * How the held peers differ from the expected ones (id → name, all online); empty when equal.
 * At most `max` differences are listed.
 */
export function netmapDiff(
  held: ReadonlyMap<string, HeldPeer>,
  expected: ReadonlyMap<string, string>,
  max = 3,
) {
  const out: string[] = [];
  for (const [id, name] of expected) {
    if (out.length >= max) return out;
    const p = held.get(id);
    if (!p) out.push(`missing ${name}`);
    else if (p.name !== name) out.push(`${name} named ${p.name}`);
    else if (!p.online) out.push(`${name} offline`);
  }
  for (const [id, p] of held) {
    if (out.length >= max) return out;
    if (!expected.has(id)) out.push(`extra ${p.name}`);
  }
  return out;
}
