import { execFile } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { LocalUiTokenFile } from '@trellis/proto';
import { writeFileAtomic } from '../state/atomic-file';
import { UserError } from '../util/user-error';

/** The local user allowed to use the UI (Tailscale's `--operator`); null: root only. */
export interface Operator {
  name: string;
  uid: number;
  gid: number;
}

/** 32 random bytes, base64url (43 characters): the UI token, session ids and CSRF tokens. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Equal strings, in time independent of where they differ (both are hashed first: equal lengths). */
export function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(h(a), h(b));
}

/** A user name (or numeric uid) to its ids, through NSS (`getent`), so LDAP users work too. */
export async function resolveOperator(user: string): Promise<Operator> {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(user)) throw new UserError(`bad operator name: ${user}`);
  let line: string;
  try {
    line = (await promisify(execFile)('getent', ['passwd', user], { timeout: 5000 })).stdout.trim();
  } catch {
    throw new UserError(`--operator ${user}: no such user`);
  }
  const [name, , uid, gid] = line.split('\n')[0]!.split(':');
  if (!name || !/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? ''))
    throw new UserError(`--operator ${user}: unreadable passwd entry`);
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * Writes the token file readable only by its owner: the operator (else root), mode 0600. The
 * directory must not be writable by anyone else, or they could swap the file for a link; the
 * file is written aside, owned and narrowed, then renamed into place.
 */
export async function writeTokenFile(
  path: string,
  content: LocalUiTokenFile,
  operator: Pick<Operator, 'uid' | 'gid'> | null,
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const d = await stat(dir);
  if ((d.mode & 0o022) !== 0 || (d.uid !== process.getuid?.() && d.uid !== 0)) {
    throw new UserError(`${dir}: writable by others than root; refusing to put the UI token there`);
  }
  await writeFileAtomic(path, `${JSON.stringify(content)}\n`, 0o600, operator ?? undefined);
}

/** `trellis ui`: the UI's address with the token in its fragment, from the token file. */
export async function readUiLink(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES')
      throw new UserError(`${path} is not readable by you: start trellisd with --operator ${userName()}`);
    throw new UserError(`${path} is missing: start trellisd with --ui-listen (see the README's "Tray app")`);
  }
  const parsed = LocalUiTokenFile.safeParse(JSON.parse(text));
  if (!parsed.success) throw new UserError(`${path}: not a trellisd UI token file`);
  return `${parsed.data.url}#token=${parsed.data.token}`;
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'USER';
  }
}
