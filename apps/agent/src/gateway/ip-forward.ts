import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../state/atomic-file';

export const IP_FORWARD_PATH = '/proc/sys/net/ipv4/ip_forward';
/** The value ip_forward had before the gateway role switched it on, kept across a crash. */
export const IP_FORWARD_REMEMBERED = 'ip-forward.previous';

/** How the sysctl file is read and written (tests give an ordinary file). */
export interface SysctlFile {
  read(path: string): Promise<string>;
  write(path: string, value: string): Promise<void>;
}

const realSysctl: SysctlFile = {
  read: (path) => readFile(path, 'utf8'),
  write: (path, value) => writeFile(path, value),
};

/**
 * net.ipv4.ip_forward is host-wide: switched on while the gateway role is, and put back to what it
 * was when the role ends, on `down`, or on the next start after a crash (the value is remembered in
 * the state directory before it is changed).
 */
export class IpForward {
  private readonly remembered: string;
  constructor(
    stateDir: string,
    private readonly sysctl: SysctlFile = realSysctl,
    private readonly path = IP_FORWARD_PATH,
  ) {
    this.remembered = join(stateDir, IP_FORWARD_REMEMBERED);
  }

  async enable(): Promise<void> {
    const current = (await this.sysctl.read(this.path)).trim();
    if ((await this.previous()) === null) await writeFileAtomic(this.remembered, `${current}\n`);
    if (current !== '1') await this.sysctl.write(this.path, '1\n');
  }

  /** Puts back the remembered value, if any (a no-op when the role never switched it on). */
  async restore(): Promise<void> {
    const previous = await this.previous();
    if (previous === null) return;
    await this.sysctl.write(this.path, `${previous}\n`);
    await rm(this.remembered, { force: true });
  }

  private async previous(): Promise<string | null> {
    try {
      const v = (await readFile(this.remembered, 'utf8')).trim();
      return v === '0' || v === '1' ? v : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }
}
