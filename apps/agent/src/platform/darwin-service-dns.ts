import { readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../state/atomic-file';
import { type CommandRunner, runChecked } from '../util/command-runner';

const BACKUP_FILE = 'darwin-dns-services.json';

interface Backup {
  /** The stub every service was pointed at: only a service still pointing there is put back. */
  server: string;
  /** Each network service's own DNS servers before (`[]`: none set, DHCP's are used). */
  services: Record<string, string[]>;
}

/**
 * Every name to the stub while an exit node is in use: /etc/resolver files only add domains, so the
 * DNS servers of every network service are set to the stub with `networksetup`, as wg-quick does on
 * macOS. Those settings persist (a reboot keeps them): the originals are saved to the state
 * directory before the first change and put back by `restore` (down, or the next start after a crash).
 */
export class DarwinServiceDns {
  private readonly backupFile: string;

  constructor(
    private readonly runner: CommandRunner,
    stateDir: string,
    private readonly log: Logger,
  ) {
    this.backupFile = join(stateDir, BACKUP_FILE);
  }

  async pointAll(server: string): Promise<void> {
    const backup = (await this.readBackup()) ?? { server, services: {} };
    const current = new Map<string, string[]>();
    for (const service of await this.services()) {
      const servers = await this.servers(service);
      current.set(service, servers);
      if (backup.services[service] !== undefined) continue;
      // Already the stub (a backup lost in a crash): DHCP's servers are the best guess for "before".
      backup.services[service] = sameList(servers, [backup.server]) ? [] : servers;
    }
    backup.server = server;
    await writeFileAtomic(this.backupFile, `${JSON.stringify(backup, null, 2)}\n`, 0o600);
    for (const [service, servers] of current) {
      if (sameList(servers, [server])) continue;
      await runChecked(this.runner, 'networksetup', ['-setdnsservers', service, server]);
      this.log.info({ service, server }, 'network service DNS pointed at the stub');
    }
  }

  async restore(): Promise<void> {
    const backup = await this.readBackup();
    if (!backup) return;
    for (const [service, before] of Object.entries(backup.services)) {
      const now = await this.servers(service).catch(() => null);
      if (now === null) continue; // the service is gone
      if (!sameList(now, [backup.server])) {
        this.log.warn({ service }, 'network service DNS was changed by something else; left as it is');
        continue;
      }
      await runChecked(this.runner, 'networksetup', [
        '-setdnsservers',
        service,
        ...(before.length > 0 ? before : ['empty']),
      ]);
    }
    await rm(this.backupFile, { force: true });
  }

  /** `networksetup -listallnetworkservices`: a header line, then names; `*` marks a disabled one. */
  private async services(): Promise<string[]> {
    const out = await runChecked(this.runner, 'networksetup', ['-listallnetworkservices']);
    return out
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('*'));
  }

  /** A service's own DNS servers; `There aren't any DNS Servers set on Wi-Fi.` is none. */
  private async servers(service: string): Promise<string[]> {
    const out = await runChecked(this.runner, 'networksetup', ['-getdnsservers', service]);
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => isIP(l) !== 0);
  }

  private async readBackup(): Promise<Backup | null> {
    const text = await readFile(this.backupFile, 'utf8').catch(() => null);
    if (text === null) return null;
    try {
      const b = JSON.parse(text) as Backup;
      return typeof b.server === 'string' && typeof b.services === 'object' ? b : null;
    } catch {
      this.log.warn({ file: this.backupFile }, 'unreadable DNS backup: network services left as they are');
      return null;
    }
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
