/** deadlock_detected and serialization_failure: PostgreSQL aborted the transaction, not the work. */
const CONFLICT_CODES = new Set(['40P01', '40001']);

/** The SQLSTATEs along an error's cause chain (drizzle wraps the driver's error). */
function* sqlStates(err: unknown): Generator<string> {
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') yield code;
  }
}

/** The SQLSTATE of a Postgres error, as both drivers report it (possibly wrapped by drizzle). */
export function pgErrorCode(err: unknown): string | undefined {
  for (const code of sqlStates(err)) return code;
  return undefined;
}

/** Whether running the same transaction again can succeed: a deadlock or serialization victim. */
export function isConflictAbort(err: unknown): boolean {
  for (const code of sqlStates(err)) if (CONFLICT_CODES.has(code)) return true;
  return false;
}

/** Transactions are run this many times in all before a conflict abort is reported. */
export const CONFLICT_ATTEMPTS = 3;

/**
 * Runs `fn` (one whole transaction, rolled back when it throws) again when PostgreSQL aborted it as
 * a deadlock or serialization victim: the other transaction then holds the locks and the retry
 * waits for it. A backstop; lock orders are what keep deadlocks away. `fn` must touch nothing but
 * the database before it commits.
 */
export async function withConflictRetry<T>(fn: () => Promise<T>, attempts = CONFLICT_ATTEMPTS): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isConflictAbort(err)) throw err;
    }
  }
}
