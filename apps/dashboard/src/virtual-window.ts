/** Which rows of a long list to draw: the rest are two spacers of the height they would take. */
export interface VirtualWindow {
  start: number;
  /** One past the last row drawn. */
  end: number;
  /** Height of the rows above `start` and below `end`, in pixels. */
  above: number;
  below: number;
}

export interface WindowInput {
  scrollTop: number;
  viewportHeight: number;
  count: number;
  rowHeight: number;
  /** Rows drawn beyond each edge, so a fast scroll does not show blank space first. */
  overscan: number;
  /** One row that is taller than the rest (the one being edited), or none. */
  tall?: { index: number; height: number } | null;
}

/**
 * The rows a scroll position shows. All rows are `rowHeight` high except `tall`; the answer is exact
 * for that shape, so the scrollbar's length and position stay true as rows are drawn and dropped.
 */
export function visibleWindow(input: WindowInput): VirtualWindow {
  const { scrollTop, viewportHeight, count, rowHeight, overscan } = input;
  const tall = input.tall && input.tall.index >= 0 && input.tall.index < count ? input.tall : null;
  const extra = tall ? tall.height - rowHeight : 0;
  const topOf = (i: number) => i * rowHeight + (tall && i > tall.index ? extra : 0);
  const indexAt = (y: number) => {
    if (tall && y >= topOf(tall.index) + tall.height) return Math.floor((y - extra) / rowHeight);
    if (tall && y >= topOf(tall.index)) return tall.index;
    return Math.floor(y / rowHeight);
  };
  const total = count * rowHeight + extra;
  const first = Math.min(count, Math.max(0, indexAt(Math.max(0, scrollTop))));
  const last = Math.min(count, indexAt(Math.max(0, scrollTop + viewportHeight)) + 1);
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, last + overscan);
  return { start, end, above: topOf(start), below: total - topOf(end) };
}
