import { unwatchFile, watchFile } from 'node:fs';
import { open, readFile, realpath, rm, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Upstream } from '../dns/upstream-forwarder';
import { writeFileAtomic } from '../state/atomic-file';
import type { ResolverConfigurator, ResolverSettings } from './resolver-configurator';

/** The first line of a resolv.conf that this agent wrote. */
export const MANAGED_MARK = '# Managed by trellisd';
const KEPT = '#trellis# ';
const BACKUP_FILE = 'resolv.conf.original';
/** How often the file is looked at for another writer (stat polling: works through bind mounts and renames). */
const WATCH_INTERVAL_MS = 2000;

/**
 * A plain /etc/resolv.conf, which cannot split: the stub becomes the only nameserver and passes
 * every other name to the ones the file had. The original is copied to the state directory before
 * the first change and written back byte for byte on `restore` (down, clean exit, or the next start
 * after a crash). The file is rewritten in place: it may be a bind mount, which a rename would fail.
 */
export class ResolvConfConfigurator implements ResolverConfigurator {
  readonly kind = 'resolv-conf' as const;
  private readonly backup: string;

  constructor(
    private readonly path: string,
    stateDir: string,
    private readonly log: Logger,
    private readonly watchIntervalMs = WATCH_INTERVAL_MS,
  ) {
    this.backup = join(stateDir, BACKUP_FILE);
  }

  async apply(settings: ResolverSettings): Promise<void> {
    const original = await this.original();
    const want = managedResolvConf(original.toString('utf8'), settings);
    const current = await readFile(this.path, 'utf8');
    if (current === want) return;
    await this.write(want);
    this.log.info(
      { path: this.path, domain: settings.domain, server: settings.server },
      'resolv.conf managed',
    );
  }

  async restore(): Promise<void> {
    const saved = await readFile(this.backup).catch(() => null);
    if (!saved) return;
    const current = await readFile(this.path, 'utf8').catch(() => '');
    if (current === saved.toString('utf8')) {
      // Never changed (a stub that could not serve), or restored before a crash cut the cleanup.
    } else if (isManaged(current) || isCutShort(current)) {
      await this.write(saved);
      this.log.info({ path: this.path }, 'resolv.conf restored');
    } else {
      // Someone else (a DHCP client, the admin) wrote it since: theirs is newer than our copy.
      this.log.warn({ path: this.path }, 'resolv.conf was rewritten by something else; left as it is');
    }
    await rm(this.backup, { force: true });
  }

  watch(onChange: () => void): () => void {
    const listener = (now: { mtimeMs: number; ino: number }, before: { mtimeMs: number; ino: number }) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino) onChange();
    };
    watchFile(this.path, { interval: this.watchIntervalMs, persistent: false }, listener);
    return () => unwatchFile(this.path, listener);
  }

  async upstreams(): Promise<Upstream[]> {
    const original = await this.original().catch(() => null);
    return original ? nameserversOf(original.toString('utf8')) : [];
  }

  /** The file as it was before us: the backup while we manage it, else the file itself (saved now). */
  private async original(): Promise<Buffer> {
    const saved = await readFile(this.backup).catch(() => null);
    const current = await readFile(this.path);
    const text = current.toString('utf8');
    if (saved && isCutShort(text)) return saved; // our own write, cut short: the backup is the original
    if (!isManaged(text)) {
      // Not ours (first apply, or rewritten by another program since): that is the original now.
      if (!saved?.equals(current)) await writeFileAtomic(this.backup, current);
      return current;
    }
    if (!saved)
      throw new Error(`${this.path} was written by trellisd but its original is gone (${this.backup})`);
    return saved;
  }

  /**
   * Replaced whole (a temporary file renamed over it, its mode kept) so a crash leaves the old or the
   * new file; in place when it cannot be renamed over (a bind mount).
   */
  private async write(content: string | Buffer): Promise<void> {
    const target = await realpath(this.path);
    const { mode } = await stat(target);
    try {
      await writeFileAtomic(target, content, mode & 0o7777);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EBUSY' && code !== 'EXDEV' && code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS')
        throw err;
      const fh = await open(target, 'r+');
      try {
        await fh.truncate(0);
        await fh.write(typeof content === 'string' ? Buffer.from(content) : content, 0, undefined, 0);
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  }
}

function isManaged(text: string): boolean {
  return text.startsWith(MANAGED_MARK);
}

/** What an in-place write cut short by a crash leaves: nothing, or the start of our own mark. */
function isCutShort(text: string): boolean {
  return text.length < MANAGED_MARK.length && MANAGED_MARK.startsWith(text);
}

/**
 * The stub first and alone (glibc would wait out a timeout on it before trying another), the
 * account's domain searched first, and every other line of the original kept: nameserver and
 * search lines commented out, options as they were.
 */
export function managedResolvConf(original: string, s: ResolverSettings): string {
  const search: string[] = [s.domain];
  const kept: string[] = [];
  for (const line of original.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'search' || key === 'domain') {
      // The last search/domain line is the one glibc uses.
      search.splice(1, search.length, ...rest.filter((d) => d !== s.domain));
      kept.push(`${KEPT}${line}`);
    } else if (key === 'nameserver') {
      kept.push(`${KEPT}${line}`);
    } else {
      kept.push(line);
    }
  }
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  return [
    `${MANAGED_MARK}: ${s.domain} is answered by the Trellis agent, which passes other names to the`,
    '# nameservers below. The original is put back on `trellis down` and when trellisd stops.',
    `nameserver ${s.server}`,
    `search ${search.join(' ')}`,
    ...kept,
    '',
  ].join('\n');
}

/** The nameservers a resolv.conf names, port 53 (glibc has no other). */
export function nameserversOf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const [key, address] = line.trim().split(/\s+/);
    if (key !== 'nameserver' || !address) continue;
    // A link-local one keeps its scope (fe80::1%eth0): without it, it cannot be reached.
    if (isIP(address.replace(/%.*$/, ''))) out.push({ address, port: 53 });
  }
  return out;
}
