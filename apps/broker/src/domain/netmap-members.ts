import type { Fragment } from './netmap-batch';
import { NetmapChunks } from './netmap-chunks';

/** The devices of each policy class of an account's netmap, also in compressed chunks. */
export class ClassMembers {
  private readonly sets = new Map<number, Set<string>>();
  readonly chunks: NetmapChunks;

  constructor(fragmentOf: (id: string) => Fragment) {
    this.chunks = new NetmapChunks(fragmentOf);
  }

  /** Class -> its devices (classes without devices are not listed). */
  get byClass(): ReadonlyMap<number, ReadonlySet<string>> {
    return this.sets;
  }

  classes(): IterableIterator<number> {
    return this.sets.keys();
  }

  /** Moves `id` out of class `from` (undefined: it was in none) into `to` (undefined: none). */
  move(id: string, from: number | undefined, to: number | undefined): void {
    this.chunks.move(id, to);
    if (from !== undefined) {
      const set = this.sets.get(from);
      set?.delete(id);
      if (set?.size === 0) this.sets.delete(from);
    }
    if (to === undefined) return;
    const set = this.sets.get(to);
    if (set) set.add(id);
    else this.sets.set(to, new Set([id]));
  }

  /** `id`'s fragment changed (its class did not). */
  touched(id: string): void {
    this.chunks.touched(id);
  }

  clear(): void {
    this.sets.clear();
    this.chunks.clear();
  }
}
