import { HeldTimers } from '../../src/control/held-timers';

describe('HeldTimers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function timers(busy: () => boolean) {
    const fired: string[] = [];
    const held: number[] = [];
    const t = new HeldTimers<string>({ recheckMs: 1_000, busy, onHeld: () => held.push(1) });
    const arm = (key: string, delayMs: number, maxMs: number) =>
      t.arm(key, delayMs, maxMs, () => fired.push(key));
    return { t, arm, fired, held };
  }

  it('fires after its delay when idle; held while busy, counted once, fires at the next look after', () => {
    let busy = false;
    const { t, arm, fired, held } = timers(() => busy);
    arm('a', 1_000, 60_000);
    jest.advanceTimersByTime(1_000);
    expect(fired).toEqual(['a']);
    busy = true;
    arm('b', 1_000, 60_000); // delay equal to the recheck: still one hold
    jest.advanceTimersByTime(5_000);
    expect(fired).toEqual(['a']);
    expect(held).toHaveLength(1);
    expect(t.has('b')).toBe(true);
    busy = false;
    jest.advanceTimersByTime(1_000);
    expect(fired).toEqual(['a', 'b']);
    expect(t.size).toBe(0);
  });

  it('fires at the latest its max after arming, however busy; re-arming starts over; cancel and clear drop', () => {
    const { t, arm, fired } = timers(() => true);
    arm('a', 2_000, 10_000);
    jest.advanceTimersByTime(6_000);
    arm('a', 2_000, 10_000);
    jest.advanceTimersByTime(9_000);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(1_000);
    expect(fired).toEqual(['a']);
    arm('b', 2_000, 10_000);
    arm('c', 2_000, 10_000);
    t.cancel('b');
    expect(t.size).toBe(1);
    t.clear();
    jest.advanceTimersByTime(60_000);
    expect(fired).toEqual(['a']);
    expect(t.size).toBe(0);
  });
});
