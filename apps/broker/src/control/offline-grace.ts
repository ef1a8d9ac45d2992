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
 * waits, up to OFFLINE_HOLD_MAX_GRACES graces after the close: its device may be in that queue. A storm of 10,000 reconnections took longer than the
 * grace here, every device still queued went offline and came back online for every peer, and the
 * storm never settled (765 s; bench netmap).
 */
export class OfflineGrace {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly maxHoldMs: number;

  constructor(
    private readonly graceMs: number,
    private readonly markOffline: MarkOffline,
    private readonly onError: (err: unknown) => void,
    private readonly busy: {
      /** Whether devices are still coming back here (see ControlServer.storming). */
      admitting(): boolean;
      /** A mark was held back (once per mark). */
      onHeld?(): void;
    } = { admitting: () => false },
  ) {
    this.maxHoldMs = graceMs * OFFLINE_HOLD_MAX_GRACES;
  }

  /**
   * The connection closed: resolves at once when there is a grace (nothing needs to wait for it).
   * Called again for the same connection, the grace starts over.
   */
  closed(deviceId: string, connectionId: string): Promise<void> {
    if (this.graceMs <= 0) return this.mark(deviceId, connectionId);
    this.arm(deviceId, connectionId, Date.now() + this.maxHoldMs, this.graceMs);
    return Promise.resolve();
  }

  private arm(deviceId: string, connectionId: string, holdUntil: number, delayMs: number): void {
    clearTimeout(this.pending.get(connectionId));
    const timer = setTimeout(() => {
      if (this.busy.admitting() && Date.now() + OFFLINE_RECHECK_MS <= holdUntil) {
        if (delayMs === this.graceMs) this.busy.onHeld?.();
        this.arm(deviceId, connectionId, holdUntil, OFFLINE_RECHECK_MS);
        return;
      }
      this.pending.delete(connectionId);
      void this.mark(deviceId, connectionId);
    }, delayMs);
    timer.unref();
    this.pending.set(connectionId, timer);
  }

  /** Marks offline now, with no grace (a broker closing connections before it stops). */
  now(deviceId: string, connectionId: string): Promise<void> {
    this.cancel(connectionId);
    return this.mark(deviceId, connectionId);
  }

  /** Forgets a pending mark (its device is on a newer connection here, or the instance stops). */
  cancel(connectionId: string): void {
    clearTimeout(this.pending.get(connectionId));
    this.pending.delete(connectionId);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Drops every pending mark: on stop, the lease's release marks the instance's devices offline. */
  dispose(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
  }

  private mark(deviceId: string, connectionId: string): Promise<void> {
    return this.markOffline(deviceId, connectionId).catch((err: unknown) => {
      this.onError(err);
    });
  }
}
