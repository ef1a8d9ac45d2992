import { inSlices } from '../../src/policy/in-slices';

describe('inSlices', () => {
  it('runs every step, and lets the event loop in after each slice of work', async () => {
    let clock = 0;
    const done: number[] = [];
    const turns: number[] = [];
    function* steps() {
      for (let i = 0; i < 10; i++) {
        clock += 7; // each step "takes" 7 ms
        done.push(i);
        yield;
      }
    }
    // Another task waiting for the loop: it runs between slices, not after the last step.
    const other = (async () => {
      while (done.length < 10) {
        turns.push(done.length);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await inSlices(steps(), 20, () => clock);
    await other;
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Slices of 21 ms (3 steps): the other task saw the work at 0, 3, 6 and 9 steps done.
    expect(turns.filter((n, i) => turns.indexOf(n) === i)).toEqual([0, 3, 6, 9]);
  });

  it('an empty run never waits', async () => {
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    await inSlices([][Symbol.iterator]());
    expect(turned).toBe(false);
  });
});
