import fc from 'fast-check';
import { SerialTracker } from '../../src/control/serial-tracker';

describe('SerialTracker', () => {
  it('applies each change once, skips what is at or below the watermark', () => {
    const t = new SerialTracker(10);
    expect(t.accept(10, 'a')).toBe(false); // read with the state already
    expect(t.accept(11, 'a')).toBe(true);
    expect(t.accept(11, 'a')).toBe(false); // the same event twice
    expect(t.watermark).toBe(11);
  });

  it('takes changes out of order, but never an older change of a device over a newer one', () => {
    const t = new SerialTracker(4);
    expect(t.accept(6, 'x')).toBe(true);
    expect(t.watermark).toBe(4);
    expect(t.accept(5, 'x')).toBe(false); // older than x's change 6: stale
    expect(t.watermark).toBe(6);
    expect(t.accept(8, 'y')).toBe(true);
    expect(t.accept(7, 'z')).toBe(true); // another device: applies
    expect(t.watermark).toBe(8);
  });

  it('reports a missed change at the check after the database was seen ahead, not before', () => {
    const t = new SerialTracker(1);
    expect(t.stalled(3)).toBe(false); // the events for 2 and 3 may be in flight
    t.accept(2, 'a');
    expect(t.stalled(3)).toBe(false); // 2 came: still moving
    expect(t.stalled(3)).toBe(false); // 3 did not come: stuck once
    expect(t.stalled(3)).toBe(true); // stuck twice: lost
    t.reloaded(3);
    expect(t.watermark).toBe(3);
    expect(t.stalled(3)).toBe(false);
    expect(t.stalled(3)).toBe(false);
  });

  it('does not report a hub whose watermark still moves (events late in a busy loop), only one that stopped', () => {
    const t = new SerialTracker(1);
    expect(t.stalled(10)).toBe(false);
    t.accept(2, 'a'); // moving, though far from 10
    expect(t.stalled(12)).toBe(false);
    t.accept(4, 'b'); // 3 is lost: the mark stays at 2
    expect(t.stalled(12)).toBe(false);
    expect(t.stalled(12)).toBe(true);
  });

  it('does not report events that arrive between two checks', () => {
    const t = new SerialTracker(1);
    expect(t.stalled(2)).toBe(false);
    t.accept(2, 'a');
    expect(t.stalled(5)).toBe(false);
    for (const s of [5, 3, 4]) t.accept(s, `d${s}`);
    expect(t.stalled(5)).toBe(false);
  });

  it('for any order and any loss: the latest change of each device is what applies, and a loss is found', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 30 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })),
        fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
        (devices, order, lost) => {
          // Change i+1 is of devices[i]; delivered shuffled; some never arrive.
          const events = devices.map((d, i) => ({ serial: i + 1, d }));
          const keys = events.map(() => order.next().value as number);
          const delivered = events
            .map((e, i) => ({ e, k: keys[i]! }))
            .sort((x, y) => x.k - y.k)
            .map((x) => x.e)
            .filter((e) => !lost[e.serial - 1]);
          const t = new SerialTracker(0);
          const state = new Map<string, number>();
          t.stalled(0);
          for (const e of delivered) if (t.accept(e.serial, e.d)) state.set(e.d, e.serial);
          const anyLost = delivered.length < events.length;
          expect(t.stalled(events.length)).toBe(false);
          expect(t.stalled(events.length)).toBe(false);
          expect(t.stalled(events.length)).toBe(anyLost);
          // What applies for each device is its latest delivered change.
          for (const [d, serial] of state) {
            const latest = Math.max(...delivered.filter((e) => e.d === d).map((e) => e.serial));
            expect(serial).toBe(latest);
          }
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });
});
