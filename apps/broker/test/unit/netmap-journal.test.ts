import fc from 'fast-check';
import { NetmapJournal } from '../../src/domain/netmap-journal';

describe('NetmapJournal', () => {
  it('names the devices changed after a cursor; nothing before its start', () => {
    const j = new NetmapJournal(10);
    j.record('a', 11, 3);
    j.record('b', 12, 3);
    j.record('a', 13, 3);
    expect(j.since(9)).toBeNull();
    expect([...j.since(10)!].sort()).toEqual(['a', 'b']);
    expect([...j.since(12)!]).toEqual(['a']);
    expect([...j.since(13)!]).toEqual([]);
    j.restart(20);
    expect(j.since(13)).toBeNull();
    expect([...j.since(20)!]).toEqual([]);
  });

  it('a change recorded with an older serial than the last is kept at the last (never missed)', () => {
    const j = new NetmapJournal(0);
    j.record('a', 5, 2);
    j.record('b', 3, 2);
    expect([...j.since(4)!].sort()).toEqual(['a', 'b']);
  });

  it('stays bounded, and what it still answers is exactly what changed', () => {
    const event = fc.record({ id: fc.nat(3000), step: fc.nat(2) });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 6000 }), fc.nat(100), (events, live) => {
        const j = new NetmapJournal(0);
        const log: Array<{ id: string; serial: number }> = [];
        let serial = 0;
        for (const e of events) {
          serial += e.step;
          const id = `d${e.id}`;
          j.record(id, serial, live);
          log.push({ id, serial });
          expect(j.size).toBeLessThanOrEqual(Math.max(1024, 4 * live));
        }
        for (const cursor of [0, serial >> 2, serial >> 1, serial - 1, serial]) {
          const got = j.since(cursor);
          if (cursor < j.start) {
            expect(got).toBeNull();
            continue;
          }
          const want = new Set(log.filter((r) => r.serial > cursor).map((r) => r.id));
          expect(got).toEqual(want);
        }
      }),
      { numRuns: Number(process.env.TRELLIS_PROPERTY_RUNS ?? 100) },
    );
  });
});
