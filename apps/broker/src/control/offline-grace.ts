/** Marks a device offline; the update names the connection, so it is a no-op once another holds it. */
export type MarkOffline = (deviceId: string, connectionId: string) => Promise<void>;

/**
 * Marks devices offline a while after their control connection closed instead of at once. A device
 * that reconnects meanwhile (to this instance or another) never goes offline for its peers, so a
 * broker restart or failover, where every device reconnects within a second or two, costs no
 * offline/online pair per device sent to every peer; the data plane never noticed anyway. If this
 * instance dies first, its lease's takeover marks them offline; a clean stop marks all it held.
 */
export class OfflineGrace {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly graceMs: number,
    private readonly markOffline: MarkOffline,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The connection closed: resolves at once when there is a grace (nothing needs to wait for it). */
  closed(deviceId: string, connectionId: string): Promise<void> {
    if (this.graceMs <= 0) return this.mark(deviceId, connectionId);
    const timer = setTimeout(() => {
      this.pending.delete(connectionId);
      void this.mark(deviceId, connectionId);
    }, this.graceMs);
    timer.unref();
    this.pending.set(connectionId, timer);
    return Promise.resolve();
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
