import { isConflictAbort, pgErrorCode, withConflictRetry } from '../../src/db/conflict-retry';

/** What drizzle throws: its own error, the driver's (with the SQLSTATE) as the cause. */
const pgError = (code: string) =>
  Object.assign(new Error('Failed query'), { cause: { code, message: code } });

/** A transaction that PostgreSQL aborts with `codes`, one per attempt, then commits. */
function failing(codes: string[]) {
  let calls = 0;
  const fn = async () => {
    calls += 1;
    const code = codes[calls - 1];
    if (code) throw pgError(code);
    return 'committed';
  };
  return { fn, calls: () => calls };
}

describe('withConflictRetry', () => {
  it('runs a deadlock or serialization victim again', async () => {
    const tx = failing(['40P01', '40001']);
    await expect(withConflictRetry(tx.fn)).resolves.toBe('committed');
    expect(tx.calls()).toBe(3);
  });

  it('gives up after the attempts it is given, with the last error', async () => {
    const tx = failing(['40P01', '40P01', '40P01']);
    await expect(withConflictRetry(tx.fn, 3)).rejects.toMatchObject({ cause: { code: '40P01' } });
    expect(tx.calls()).toBe(3);
  });

  it('does not run again what failed for another reason', async () => {
    const unique = failing(['23505']);
    await expect(withConflictRetry(unique.fn)).rejects.toMatchObject({ cause: { code: '23505' } });
    expect(unique.calls()).toBe(1);
    let calls = 0;
    const domain = async () => {
      calls += 1;
      throw new Error('no such device');
    };
    await expect(withConflictRetry(domain)).rejects.toThrow('no such device');
    expect(calls).toBe(1);
  });

  it('finds the SQLSTATE however deep drizzle wrapped it', () => {
    expect(pgErrorCode(new Error('x', { cause: pgError('40P01') }))).toBe('40P01');
    expect(isConflictAbort({ code: '40001' })).toBe(true);
    expect(isConflictAbort(pgError('23505'))).toBe(false);
    expect(isConflictAbort(new Error('plain'))).toBe(false);
    expect(pgErrorCode(undefined)).toBeUndefined();
  });
});
