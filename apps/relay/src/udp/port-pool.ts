import type { PortRange } from '@trellis/proto';

/** Ports of the range not held by an allocation, tried from a random start so restarts spread out. */
export class PortPool {
  private readonly held = new Set<number>();

  constructor(
    readonly range: PortRange,
    private readonly random: () => number = Math.random,
  ) {}

  /** Up to `limit` free candidates, in the order to try them. */
  *candidates(limit: number): Generator<number> {
    const size = this.range.last - this.range.first + 1;
    const start = Math.floor(this.random() * size);
    let yielded = 0;
    for (let i = 0; i < size && yielded < limit; i++) {
      const port = this.range.first + ((start + i) % size);
      if (this.held.has(port)) continue;
      yielded++;
      yield port;
    }
  }

  hold(port: number): void {
    this.held.add(port);
  }

  release(port: number): void {
    this.held.delete(port);
  }

  get inUse(): number {
    return this.held.size;
  }
}
