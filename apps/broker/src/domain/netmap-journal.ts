/** Records kept at least, however small the account. */
const MIN_RECORDS = 1024;

/**
 * Which devices of an account changed (or went) after which serial, so that a device reconnecting
 * with the netmap it held at a serial gets only what changed since (a delta) instead of all of it.
 * Serials are recorded in the order changes are applied and never decrease (the netmap records its
 * highest applied serial, which may be above the change's own: a cursor then gets the change once
 * more, never misses it). Bounded: past a few records per device it keeps only each device's last
 * record, and past that forgets the oldest removals and starts later.
 */
export class NetmapJournal {
  private serials: number[] = [];
  private ids: string[] = [];
  private first: number;

  constructor(start: number) {
    this.first = start;
  }

  /** Cursors below this cannot be resumed: the journal does not reach back that far. */
  get start(): number {
    return this.first;
  }

  get size(): number {
    return this.ids.length;
  }

  /** Forgets everything and starts at `serial` (a netmap loaded whole at that serial). */
  restart(serial: number): void {
    this.serials = [];
    this.ids = [];
    this.first = serial;
  }

  /** `id` changed or went; `serial` is at least every serial recorded before. `live`: devices now. */
  record(id: string, serial: number, live: number): void {
    const last = this.serials.at(-1) ?? this.first;
    this.serials.push(Math.max(serial, last));
    this.ids.push(id);
    const limit = Math.max(MIN_RECORDS, 4 * live);
    if (this.ids.length > limit) this.compact(limit / 2);
  }

  /** The ids changed after `cursor`, or null when changes from there are no longer known. */
  since(cursor: number): Set<string> | null {
    if (cursor < this.first) return null;
    const changed = new Set<string>();
    for (let i = this.firstAfter(cursor); i < this.ids.length; i++) changed.add(this.ids[i]!);
    return changed;
  }

  /** Index of the first record with a serial above `cursor` (binary search: serials never decrease). */
  private firstAfter(cursor: number): number {
    let lo = 0;
    let hi = this.serials.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.serials[mid]! > cursor) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Keeps each id's last record; if more than `keep` remain, drops the oldest and starts after them. */
  private compact(keep: number): void {
    const lastAt = new Map<string, number>();
    for (const [i, id] of this.ids.entries()) lastAt.set(id, i);
    const kept = [...lastAt.values()].sort((a, b) => a - b);
    const cut = Math.max(0, kept.length - Math.floor(keep));
    // Dropped records end at a serial that later ones may share: start after all of that serial.
    if (cut > 0) this.first = Math.max(this.first, this.serials[kept[cut - 1]!]!);
    const rest = kept.slice(cut).filter((i) => this.serials[i]! > this.first);
    this.serials = rest.map((i) => this.serials[i]!);
    this.ids = rest.map((i) => this.ids[i]!);
  }
}

/** What a resumed connection needs: the serial of the netmap it holds and where the device stood. */
export interface ResumeFrom {
  /** The journal cursor its last frame carried (the hub's watermark then). */
  cursor: number;
  /** The serial of the netmap it holds (the delta's base). */
  base: number;
}

/**
 * Why a reconnecting device gets a snapshot instead of a delta from the netmap it holds: its token
 * is not this hub's (or an older policy's), the journal no longer reaches back to it, the device got
 * another policy class since, or so much changed that a delta would be about as large.
 */
export type ResumeRefusal = 'token' | 'journal' | 'reclassed' | 'changes';
