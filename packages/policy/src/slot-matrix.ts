/**
 * A cell per (from, to) pair of class slots, growing as slots are handed out: 1 + an interned
 * relation id, 0 while not computed. A slot freed by a class that went away is cleared, since
 * the next class to get it is another one.
 */
export class SlotMatrix {
  private readonly rows: (Int32Array | undefined)[] = [];

  get(from: number, to: number): number {
    const row = this.rows[from];
    return row && row.length > to ? row[to]! : 0;
  }

  /** `width`: how many slots exist, so a row grows once for all of them. */
  set(from: number, to: number, cell: number, width: number): void {
    let row = this.rows[from];
    if (!row || row.length <= to) {
      const grown = new Int32Array(Math.max(width, to + 1));
      if (row) grown.set(row);
      row = grown;
      this.rows[from] = row;
    }
    row[to] = cell;
  }

  clear(slot: number): void {
    this.rows[slot] = undefined;
    for (const row of this.rows) if (row && row.length > slot) row[slot] = 0;
  }
}
