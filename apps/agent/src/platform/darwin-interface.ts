/** wireguard-go's name for a kernel-chosen utun: it writes the real one (`utun4`) to WG_TUN_NAME_FILE. */
export const UTUN_REQUEST = 'utun';
const UTUN_RE = /^utun\d{1,4}$/;

export function isUtunName(name: string): boolean {
  return UTUN_RE.test(name);
}

/**
 * macOS cannot name an interface: the agent keeps its logical name (`trellis0`) and the darwin
 * parts map it to the utun wireguard-go got. The WireGuard backend sets it after start and clears
 * it on stop; the network, exit and resolver parts read it, so the agent itself is unchanged.
 */
export class UtunName {
  private current: string | null = null;

  constructor(readonly logical: string) {}

  /** The utun now, or null while WireGuard is not running. */
  get utun(): string | null {
    return this.current;
  }

  set(utun: string): void {
    if (!isUtunName(utun)) throw new Error(`not a utun interface name: ${JSON.stringify(utun)}`);
    this.current = utun;
  }

  clear(): void {
    this.current = null;
  }

  /** The OS name for `name`: the utun for the logical name, any other name as it is. */
  resolve(name: string): string {
    if (name !== this.logical) return name;
    if (this.current === null)
      throw new Error(`${this.logical} has no utun interface (WireGuard is not running)`);
    return this.current;
  }

  /** Like resolve, null when WireGuard is not running (for cleanups, which then have less to do). */
  tryResolve(name: string): string | null {
    return name === this.logical ? this.current : name;
  }
}
