import type { KeepOut } from '../routes/route-selector';

/** What the overlay needs from the OS around the WireGuard interface. One implementation per OS. */
export interface NetworkConfigurator {
  /** Address (/32) on the interface, link up, the overlay prefix routed into it. Idempotent. */
  apply(interfaceName: string, address: string, overlayPrefix: string): Promise<void>;
  /** Removes what apply added (the interface itself is the backend's). Safe when already gone. */
  remove(interfaceName: string, overlayPrefix: string | null): Promise<void>;
  /**
   * Routes exactly these subnet prefixes (other devices' routes) into the interface, removing the
   * ones it routed before that are no longer wanted. Idempotent; `[]` removes them all.
   */
  setRoutes(interfaceName: string, prefixes: readonly string[]): Promise<void>;
  /** Hosts no subnet route may cover: the default gateway and the DNS servers (absent: none known). */
  keepOutHosts?(): Promise<KeepOut[]>;
}
