/**
 * Every namespace, interface and socket a lab creates starts with `tl<pid in base 36>_<lab id>-`,
 * so a later run can tell which leftovers belong to a dead process (see sweep.ts). The lab id
 * separates several labs of one process (jest --runInBand runs every file in one process).
 */
export const LAB_PREFIX_RE = /^tl([0-9a-z]+)_[0-9a-z]+-/;

export function labPrefix(labId: string, pid: number = process.pid): string {
  return `tl${pid.toString(36)}_${labId}-`;
}

export function ownerPid(name: string): number | null {
  const m = LAB_PREFIX_RE.exec(name);
  return m ? Number.parseInt(m[1]!, 36) : null;
}

/** Linux limits interface names to 15 bytes (IFNAMSIZ - 1). */
export const MAX_IFNAME = 15;

export function checkIfName(name: string): string {
  if (name.length > MAX_IFNAME)
    throw new Error(`interface name ${name} is longer than ${MAX_IFNAME} characters`);
  return name;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
