import { HeldTimers } from './held-timers';

/** Marks a device offline; the update names the connection, so it is a no-op once another holds it. */
export type MarkOffline = (deviceId: string, connectionId: string) => Promise<void>;

/** How often a mark held back by a busy instance looks again. */
export const OFFLINE_RECHECK_MS = 1_000;
/**
 * A mark is held back at most this many graces after its close, however busy the instance (5 min
 * at the default grace). A storm the admission gate spreads out lasts minutes at 10,000 devices;
 * with 6 (one minute) the marks of those still waiting fired mid-storm, and the resulting offline
 * and online changes made every later reconnection a snapshot (bench netmap).
 */
export const OFFLINE_HOLD_MAX_GRACES = 30;

/**
 * Marks devices offline a while after their control connection closed instead of at once. A device
 * that reconnects meanwhile (to this instance or another) never goes offline for its peers, so a
 * broker restart or failover, where every device reconnects within a second or two, costs no
 * offline/online pair per device sent to every peer; the data plane never noticed anyway. If this
 * instance dies first, its lease's takeover marks them offline; a clean stop marks all it held.
 *
 * While devices are still coming back to the instance (`busy.admitting()`, ControlServer.storming:
 * connections not yet given their netmap, or one turned away lately), a mark whose grace ran out
 * waits (HeldTimers), up to OFFLINE_HOLD_MAX_GRACES graces after the close: its device may be in
 * that queue. A storm of 10,000 reconnections took longer than the grace here, every device still
 * queued went offline and came back online for every peer, and the storm never settled (765 s;
 * bench netmap).
 */
export class OfflineGrace {
  private readonly pending: HeldTimers<string>;
  private readonly maxHoldMs: number;

  constructor(
    private readonly graceMs: number,
    private readonly markOffline: MarkOffline,
    private readonly onError: (err: unknown) => void,
    busy: {
      /** Whether devices are still coming back here (see ControlServer.storming). */
      admitting(): boolean;
      /** A mark was held back (once per mark). */
      onHeld?(): void;
    } = { admitting: () => false },
  ) {
    this.maxHoldMs = graceMs * OFFLINE_HOLD_MAX_GRACES;
    this.pending = new HeldTimers({
      recheckMs: OFFLINE_RECHECK_MS,
      busy: () => busy.admitting(),
      onHeld: () => busy.onHeld?.(),
    });
  }

  /**
   * The connection closed: resolves at once when there is a grace (nothing needs to wait for it).
   * Called again for the same connection, the grace starts over.
   */
  closed(deviceId: string, connectionId: string): Promise<void> {
    if (this.graceMs <= 0) return this.mark(deviceId, connectionId);
    this.pending.arm(
      connectionId,
      this.graceMs,
      this.maxHoldMs,
      () => void this.mark(deviceId, connectionId),
    );
    return Promise.resolve();
  }

  /** Marks offline now, with no grace (a broker closing connections before it stops). */
  now(deviceId: string, connectionId: string): Promise<void> {
    this.cancel(connectionId);
    return this.mark(deviceId, connectionId);
  }

  /** Forgets a pending mark (its device is on a newer connection here, or the instance stops). */
  cancel(connectionId: string): void {
    this.pending.cancel(connectionId);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Drops every pending mark: on stop, the lease's release marks the instance's devices offline. */
  dispose(): void {
    this.pending.clear();
  }

  private mark(deviceId: string, connectionId: string): Promise<void> {
    return this.markOffline(deviceId, connectionId).catch((err: unknown) => {
      this.onError(err);
    });
  }
}
