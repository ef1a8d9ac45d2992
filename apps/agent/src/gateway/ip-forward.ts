import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../state/atomic-file';

export const IP_FORWARD_PATH = '/proc/sys/net/ipv4/ip_forward';
/**
 * The value ip_forward had before the gateway role switched it on (`0` or `1`), kept across a
 * crash. Only that: the role always sets 1, and an older agent reads this file too (downgrade).
 */
export const IP_FORWARD_REMEMBERED = 'ip-forward.previous';
/** What the role sets. */
const ON = '1';

/** How the sysctl file is read and written (tests give an ordinary file). */
export interface SysctlFile {
  read(path: string): Promise<string>;
  write(path: string, value: string): Promise<void>;
}

/** A restore that left ip_forward alone: it no longer read what the role set. */
export interface IpForwardLeft {
  previous: string;
  current: string;
}

const realSysctl: SysctlFile = {
  read: (path) => readFile(path, 'utf8'),
  write: (path, value) => writeFile(path, value),
};

/**
 * net.ipv4.ip_forward is host-wide: switched on while the gateway role is, and put back to what it
 * was when the role ends, on `down`, or on the next start after a crash (the value is remembered in
 * the state directory before it is changed). Put back only while it still reads 1, what the role
 * set: a value changed since belongs to whoever changed it. A program that set the same 1 after
 * the role did (docker) cannot be told apart, and forwarding goes off with the role all the same.
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
    if (current !== ON) await this.sysctl.write(this.path, `${ON}\n`);
  }

  /**
   * Puts back the remembered value, if any (a no-op when the role never switched it on). Returns
   * what it found instead when another program changed the value since: that is left as it is.
   */
  async restore(): Promise<IpForwardLeft | null> {
    const previous = await this.previous();
    if (previous === null) return null;
    const current = (await this.sysctl.read(this.path)).trim();
    let left: IpForwardLeft | null = null;
    if (current !== ON) left = { previous, current };
    else if (previous !== ON) await this.sysctl.write(this.path, `${previous}\n`);
    await rm(this.remembered, { force: true });
    return left;
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
