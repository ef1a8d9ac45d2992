/**
 * Due times for the pair-path core: a binary min-heap of (time, item). Rescheduling pushes a new
 * entry; the owner checks on pop whether an entry is still current (its own field still holds that
 * time), so nothing is ever searched for or removed from the middle.
 */
export class TimerQueue<T> {
  private readonly heap: Array<{ at: number; seq: number; item: T }> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    this.heap.push({ at, seq: this.seq++, item });
    this.up(this.heap.length - 1);
  }

  /** The earliest due time, or null when empty. */
  peek(): number | null {
    return this.heap[0]?.at ?? null;
  }

  /** Removes and returns the earliest entry due at or before `now`. */
  popDue(now: number): { at: number; item: T } | undefined {
    const top = this.heap[0];
    if (!top || top.at > now) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top;
  }

  clear(): void {
    this.heap.length = 0;
  }

  private less(i: number, j: number): boolean {
    const x = this.heap[i]!;
    const y = this.heap[j]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }

  private swap(i: number, j: number): void {
    const t = this.heap[i]!;
    this.heap[i] = this.heap[j]!;
    this.heap[j] = t;
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.heap.length && this.less(l, m)) m = l;
      if (r < this.heap.length && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
