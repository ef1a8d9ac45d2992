import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

/** The embedded database is open in another live process (a broker, or an admin command). */
export class DatabaseLockedError extends Error {
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(
      `the embedded database is in use by process ${pid} (lock ${path}): a broker serving this data ` +
        'directory takes admin commands through its admin socket once it is up; try again in a moment, ' +
        'or stop that process',
    );
    this.name = 'DatabaseLockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process not yet reaped by its parent still answers signal 0; on Linux it is a zombie.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (not Linux): trust the signal
  }
}

/**
 * An exclusive lock on the embedded database: a file created with O_EXCL that holds the owner's
 * pid. PGlite has no locking of its own, and two processes writing one data directory corrupt it.
 * A lock whose process is gone (killed) is taken over. Returns the release function.
 */
export function lockDataDir(path: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          if (Number(readFileSync(path, 'utf8')) === process.pid) unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder = Number.NaN;
    try {
      holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch {
      // Removed meanwhile, or empty (its writer was killed between create and write): retry.
    }
    // Our own pid too: this process opened it already, and a second PGlite on it would corrupt it.
    if (Number.isInteger(holder) && alive(holder)) {
      throw new DatabaseLockedError(path, holder);
    }
    try {
      unlinkSync(path);
    } catch {
      // Someone else removed the stale lock first.
    }
  }
  throw new Error(`could not take the database lock ${path}`);
}
