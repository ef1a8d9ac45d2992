import fc from 'fast-check';
import { visibleWindow } from '../src/virtual-window';

describe('visibleWindow: the rows a scroll position shows', () => {
  it('draws the rows in view plus the overscan, and spacers for the rest', () => {
    const w = visibleWindow({ scrollTop: 520, viewportHeight: 260, count: 5000, rowHeight: 52, overscan: 3 });
    expect(w).toEqual({ start: 7, end: 19, above: 7 * 52, below: (5000 - 19) * 52 });
  });

  it('at the end of the list draws up to the last row and no space below', () => {
    const w = visibleWindow({
      scrollTop: 10_000,
      viewportHeight: 520,
      count: 100,
      rowHeight: 52,
      overscan: 2,
    });
    expect(w.end).toBe(100);
    expect(w.below).toBe(0);
  });

  it('an empty list draws nothing', () => {
    expect(
      visibleWindow({ scrollTop: 0, viewportHeight: 500, count: 0, rowHeight: 52, overscan: 5 }),
    ).toEqual({
      start: 0,
      end: 0,
      above: 0,
      below: 0,
    });
  });

  it('for any list and scroll position: spacers plus drawn rows are the whole height, and every row in view is drawn', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 50, max: 2000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.option(
          fc.record({ index: fc.integer({ min: 0, max: 3000 }), height: fc.integer({ min: 80, max: 400 }) }),
          { nil: null },
        ),
        (count, rowHeight, scrollTop, viewportHeight, overscan, tall) => {
          const w = visibleWindow({ scrollTop, viewportHeight, count, rowHeight, overscan, tall });
          const heightOf = (i: number) =>
            tall && tall.index < count && i === tall.index ? tall.height : rowHeight;
          let drawn = 0;
          for (let i = w.start; i < w.end; i += 1) drawn += heightOf(i);
          let total = 0;
          for (let i = 0; i < count; i += 1) total += heightOf(i);
          expect(w.above + drawn + w.below).toBe(total);
          expect(0 <= w.start && w.start <= w.end && w.end <= count).toBe(true);
          // Every row that overlaps the viewport is drawn.
          let top = 0;
          for (let i = 0; i < count; i += 1) {
            const bottom = top + heightOf(i);
            if (bottom > scrollTop && top < scrollTop + viewportHeight) {
              expect(i >= w.start && i < w.end).toBe(true);
            }
            top = bottom;
          }
          // Never more than the view needs plus the overscan (the tall row counts as one).
          expect(w.end - w.start).toBeLessThanOrEqual(
            Math.ceil(viewportHeight / rowHeight) + 2 + 2 * overscan,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
