import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file so that a crash leaves either the old or the new content, never half of one:
 * write a temporary file (`mode`, 0600 unless given), fsync it, rename it over the target, fsync
 * the directory (not on Windows: see syncDir).
 */
export async function writeFileAtomic(
  path: string,
  content: string | Buffer,
  mode = 0o600,
  /** Given: the file belongs to this user (and group) before it appears under `path`. */
  owner?: { uid: number; gid: number },
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(content);
      await fh.chmod(mode); // the umask may have narrowed it
      if (owner) await fh.chown(owner.uid, owner.gid);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(path));
}

/**
 * Makes a directory's entries (a rename, a removal) durable. Not on Windows: FlushFileBuffers on a
 * directory handle fails there (EPERM, nodejs/node#3879), and NTFS journals the rename itself.
 * process.platform is read at each call, not at load, so a test can force it.
 */
export async function syncDir(path: string): Promise<void> {
  if (process.platform === 'win32') return;
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
