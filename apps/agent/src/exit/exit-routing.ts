/**
 * Routing internet traffic into the mesh interface while an exit node is wanted (issue 14). One
 * implementation per OS (`linux.ts`; darwin and windows come with issue 16).
 */

/**
 * The mark on WireGuard's own UDP packets: they keep the main table (the physical link) while
 * everything else goes to the exit table. "tr" in ASCII; clashes neither with wg-quick (51820)
 * nor with Tailscale (0x80000/0xff0000).
 */
export const EXIT_FWMARK = 0x7472;

export interface ExitRoutingPlan {
  /** The mesh (WireGuard) interface internet traffic goes into. */
  interfaceName: string;
  /** Packets carrying it are left to the main table (WireGuard's own UDP). */
  fwmark: number;
  /** LAN and other specific routes of the main table keep winning over the exit default route. */
  allowLan: boolean;
  /** IPv4 or IPv6 addresses that keep their direct path (broker, relays, reflectors). */
  bypass: readonly string[];
}

export interface ExitRouting {
  /**
   * Makes the OS route as the plan says. Idempotent: reads what is there and changes only the
   * difference. Fail closed: even when the mesh interface is gone, nothing falls back to the ISP.
   */
  apply(plan: ExitRoutingPlan): Promise<void>;
  /** Takes away exactly what `apply` adds (also what a crashed run left). Safe when nothing is there. */
  remove(): Promise<void>;
}
