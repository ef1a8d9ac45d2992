import { OFFLINE_HOLD_MAX_GRACES, OFFLINE_RECHECK_MS, OfflineGrace } from '../../src/control/offline-grace';

describe('OfflineGrace', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function grace(ms: number, admitting = () => false) {
    const marked: string[] = [];
    const errors: unknown[] = [];
    const held: number[] = [];
    const g = new OfflineGrace(
      ms,
      async (deviceId, connectionId) => {
        if (deviceId === 'broken') throw new Error('database gone');
        marked.push(`${deviceId}@${connectionId}`);
      },
      (err) => errors.push(err),
      { admitting, onHeld: () => held.push(1) },
    );
    return { g, marked, errors, held };
  }

  it('a connection closed again (its online update finished after the close) starts its grace over, once', async () => {
    const { g, marked } = grace(10_000);
    await g.closed('d1', 'c1');
    jest.advanceTimersByTime(6_000);
    await g.closed('d1', 'c1');
    jest.advanceTimersByTime(6_000);
    await Promise.resolve();
    expect(marked).toEqual([]);
    expect(g.size).toBe(1);
    jest.advanceTimersByTime(4_000);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    jest.advanceTimersByTime(60_000);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    expect(g.size).toBe(0);
  });

  it('holds a mark back while the instance is admitting reconnections, and marks soon after', async () => {
    let busy = true;
    const { g, marked, held } = grace(10_000, () => busy);
    await g.closed('d1', 'c1');
    jest.advanceTimersByTime(10_000 + 5 * OFFLINE_RECHECK_MS);
    await Promise.resolve();
    expect(marked).toEqual([]);
    expect(held).toHaveLength(1);
    expect(g.size).toBe(1);
    busy = false;
    jest.advanceTimersByTime(OFFLINE_RECHECK_MS);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    expect(g.size).toBe(0);
  });

  it('holds a mark back at most OFFLINE_HOLD_MAX_GRACES graces after the close, however busy', async () => {
    const { g, marked } = grace(10_000, () => true);
    await g.closed('d1', 'c1');
    jest.advanceTimersByTime(10_000 * OFFLINE_HOLD_MAX_GRACES - OFFLINE_RECHECK_MS - 1);
    await Promise.resolve();
    expect(marked).toEqual([]);
    jest.advanceTimersByTime(OFFLINE_RECHECK_MS + 1);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    // A held mark is still cancelled and disposed of like any other.
    await g.closed('d2', 'c2');
    jest.advanceTimersByTime(10_000 + OFFLINE_RECHECK_MS);
    g.cancel('c2');
    jest.advanceTimersByTime(10_000 * OFFLINE_HOLD_MAX_GRACES);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    expect(g.size).toBe(0);
  });

  it('marks a device offline only once the grace has passed', async () => {
    const { g, marked } = grace(10_000);
    await g.closed('d1', 'c1');
    expect(marked).toEqual([]);
    expect(g.size).toBe(1);
    jest.advanceTimersByTime(9_999);
    expect(marked).toEqual([]);
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    expect(marked).toEqual(['d1@c1']);
    expect(g.size).toBe(0);
  });

  it('with no grace, at once; now() skips a pending grace; cancel and dispose drop it', async () => {
    const { g, marked } = grace(0);
    await g.closed('d1', 'c1');
    expect(marked).toEqual(['d1@c1']);

    const later = grace(5_000);
    await later.g.closed('d2', 'c2');
    await later.g.now('d2', 'c2');
    expect(later.marked).toEqual(['d2@c2']);
    await later.g.closed('d3', 'c3');
    later.g.cancel('c3');
    await later.g.closed('d4', 'c4');
    later.g.dispose();
    jest.advanceTimersByTime(10_000);
    await Promise.resolve();
    expect(later.marked).toEqual(['d2@c2']);
  });

  it('a failed update is reported, not thrown', async () => {
    const { g, errors } = grace(0);
    await expect(g.closed('broken', 'c1')).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
  });
});
